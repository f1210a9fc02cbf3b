//! Which of the shared file's mints this mint is, and so where its Sv2
//! listener binds.
//!
//! One mint (`mint_address`, `mint_authority_pubkey`): the mint listens on
//! `mint_address`, and refuses to start if the key given is not its own,
//! as it always has. Several (`[[sv2_messaging.mints]]`): the mint is the
//! one entry whose `authority_pubkey` is its own public key, and listens on
//! that entry's address. Every mint then needs a key of its own: two
//! entries with one key would leave a mint unable to tell which address is
//! its own, and the pool unable to tell which mint it reached.

use std::net::SocketAddr;
use std::path::Path;

use mint_quote_config::{ConfigError, ConfiguredMint, MintSource, Sv2MessagingConfig};
use mint_quote_proto::AuthorityPublicKey;

/// Where this mint's Sv2 listener binds: the address of the mint of
/// `shared` whose key is `own`.
pub(super) fn own_sv2_listen(
    shared: &Sv2MessagingConfig,
    shared_path: &Path,
    own: &AuthorityPublicKey,
    mint_path: &Path,
) -> Result<SocketAddr, ConfigError> {
    let endpoints = shared.endpoints(shared_path)?;
    let mine: Vec<&ConfiguredMint> = endpoints
        .iter()
        .filter(|m| m.authority_pubkey.is_none_or(|key| key == *own))
        .collect();
    let mint_file = mint_path.display();
    match (mine.as_slice(), endpoints.as_slice()) {
        ([one], _) => super::parse_addr(shared_path, &one.source.address_key(), &one.address),
        ([], [single]) if single.source == MintSource::Single => {
            let pinned = single
                .authority_pubkey
                .map(|k| k.to_string())
                .unwrap_or_default();
            Err(ConfigError::invalid(
                shared_path,
                single.source.pubkey_key(),
                format!("{pinned} is not the public key of mint.authority_secret_key in {mint_file} (that is {own})"),
            ))
        }
        ([], _) => Err(ConfigError::invalid(
            shared_path,
            "sv2_messaging.mints",
            format!(
                "no entry has authority_pubkey = {own}, the public key of mint.authority_secret_key in {mint_file}: add this mint's entry, or check its secret key"
            ),
        )),
        (many, _) => {
            let entries: Vec<String> = many.iter().map(|m| m.source.to_string()).collect();
            Err(ConfigError::invalid(
                shared_path,
                "sv2_messaging.mints",
                format!(
                    "{} all have authority_pubkey = {own}, this mint's public key (mint.authority_secret_key in {mint_file}); give each mint its own key (`mint-server keygen`): the key is how a mint finds its own entry and how a pool tells its mints apart",
                    entries.join(", ")
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Settings;

    const SHARED: &str = include_str!("../../../config/shared/pool.toml");
    const MINT: &str = include_str!("../../../config/mint.toml");
    /// The public key of `config/mint.toml`'s secret.
    const OWN: &str = "9c4bxJEboZ4MMTTR5jV215CuDvF1hRETxPnPuUGFo2ngVorRQE2";
    const OTHER: &str = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";

    /// The example shared file with its one mint replaced by `entries`
    /// (address, key).
    fn shared_with(entries: &[(&str, &str)]) -> String {
        let mut text: String = SHARED
            .lines()
            .filter(|l| !l.starts_with("mint_address") && !l.starts_with("mint_authority_pubkey"))
            .map(|l| format!("{l}\n"))
            .collect();
        for (address, key) in entries {
            text.push_str(&format!(
                "[[sv2_messaging.mints]]\naddress = \"{address}\"\nauthority_pubkey = \"{key}\"\n"
            ));
        }
        text
    }

    fn refusal(shared: &str) -> String {
        match Settings::parse(MINT, shared) {
            Ok(s) => panic!("accepted, listening on {}", s.sv2_listen),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn with_several_mints_a_mint_listens_on_the_address_of_its_own_key() {
        let shared = shared_with(&[("127.0.0.1:34261", OTHER), ("127.0.0.1:34262", OWN)]);
        let settings = Settings::parse(MINT, &shared).unwrap();
        assert_eq!(settings.sv2_listen.to_string(), "127.0.0.1:34262");
    }

    #[test]
    fn a_mint_whose_key_no_entry_has_is_refused() {
        let err = refusal(&shared_with(&[("127.0.0.1:34261", OTHER)]));
        assert!(err.starts_with("pool.toml: sv2_messaging.mints:"), "{err}");
        assert!(err.contains(OWN) && err.contains("mint.toml"), "{err}");
    }

    #[test]
    fn two_entries_with_the_mints_key_are_refused() {
        let err = refusal(&shared_with(&[
            ("127.0.0.1:34261", OWN),
            ("127.0.0.1:34262", OWN),
        ]));
        assert!(err.starts_with("pool.toml: sv2_messaging.mints:"), "{err}");
        assert!(
            err.contains("sv2_messaging.mints[0], sv2_messaging.mints[1]")
                && err.contains("its own key"),
            "{err}"
        );
    }

    #[test]
    fn an_unusable_address_names_its_entry() {
        let err = refusal(&shared_with(&[
            ("127.0.0.1:34261", OTHER),
            ("nowhere", OWN),
        ]));
        assert!(
            err.starts_with("pool.toml: sv2_messaging.mints[1].address:"),
            "{err}"
        );
    }

    #[test]
    fn a_development_key_beyond_loopback_names_the_list() {
        let err = refusal(&shared_with(&[("0.0.0.0:34261", OWN)]));
        assert!(err.contains("sv2_messaging.mints"), "{err}");
        assert!(err.contains("development key"), "{err}");
    }
}

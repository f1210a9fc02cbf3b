//! The mints a pool talks to: one (`mint_address` and
//! `mint_authority_pubkey`, as before) or several
//! (`[[sv2_messaging.mints]]`), and the one list both forms resolve to.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use mint_quote_proto::AuthorityPublicKey;
use serde::Deserialize;

use crate::load::ConfigError;

/// Where the mint listens and the pool connects when the file gives no
/// address at all.
pub const DEFAULT_MINT_ADDRESS: &str = "127.0.0.1:34260";

/// Entries `[[sv2_messaging.mints]]` may have, both ends included. Each
/// is one connection the pool keeps open, with up to
/// `sv2_messaging.max_in_flight` requests on it; more than a handful of
/// mints per pool is a configuration mistake rather than a design.
pub const MINTS_ALLOWED: std::ops::RangeInclusive<usize> = 1..=16;

/// One `[[sv2_messaging.mints]]` entry, as written.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MintEntry {
    /// `host:port` this mint listens on and the pool connects to.
    pub address: String,
    /// This mint's authority public key (Sv2 base58check form). The pool
    /// pins it; the mint whose secret key matches it listens on
    /// `address`.
    pub authority_pubkey: String,
}

/// Which keys of the file a [`ConfiguredMint`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MintSource {
    /// `sv2_messaging.mint_address` and `sv2_messaging.mint_authority_pubkey`.
    Single,
    /// Entry `i` (from 0) of `[[sv2_messaging.mints]]`.
    List(usize),
}

impl MintSource {
    /// The key that holds the address, as `section.key`.
    pub fn address_key(&self) -> String {
        match self {
            MintSource::Single => "sv2_messaging.mint_address".into(),
            MintSource::List(i) => format!("sv2_messaging.mints[{i}].address"),
        }
    }

    /// The key that holds the authority public key, as `section.key`.
    pub fn pubkey_key(&self) -> String {
        match self {
            MintSource::Single => "sv2_messaging.mint_authority_pubkey".into(),
            MintSource::List(i) => format!("sv2_messaging.mints[{i}].authority_pubkey"),
        }
    }
}

impl fmt::Display for MintSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MintSource::Single => f.write_str("sv2_messaging.mint_address"),
            MintSource::List(i) => write!(f, "sv2_messaging.mints[{i}]"),
        }
    }
}

/// One mint of the shared file, whichever form named it, with its key
/// parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredMint {
    /// `host:port` the mint listens on and the pool connects to.
    pub address: String,
    /// The mint's authority public key. Always present in the list form;
    /// in the single form the pool requires it, the mint does not.
    pub authority_pubkey: Option<AuthorityPublicKey>,
    /// The keys it was read from, for messages.
    pub source: MintSource,
}

/// Parses `text`, the value of `key` in `path`, as an authority key.
pub(crate) fn parse_key(
    path: &Path,
    key: &str,
    text: &str,
) -> Result<AuthorityPublicKey, ConfigError> {
    text.parse().map_err(|e| ConfigError::invalid(path, key, e))
}

/// The list form, checked: its length within [`MINTS_ALLOWED`], every
/// address non-empty and given once, every key parseable.
pub(crate) fn resolve_list(
    path: &Path,
    entries: &[MintEntry],
) -> Result<Vec<ConfiguredMint>, ConfigError> {
    if !MINTS_ALLOWED.contains(&entries.len()) {
        return Err(ConfigError::invalid(
            path,
            "sv2_messaging.mints",
            format!(
                "{} entries; give {}..={} (one [[sv2_messaging.mints]] table per mint)",
                entries.len(),
                MINTS_ALLOWED.start(),
                MINTS_ALLOWED.end()
            ),
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut mints = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let source = MintSource::List(i);
        let address = entry.address.trim();
        if address.is_empty() {
            return Err(ConfigError::invalid(
                path,
                source.address_key(),
                "must not be empty",
            ));
        }
        if let Some(first) = seen.insert(address, i) {
            return Err(ConfigError::invalid(
                path,
                source.address_key(),
                format!("{address:?} is already the address of sv2_messaging.mints[{first}]; each mint listens on its own address"),
            ));
        }
        let key = parse_key(path, &source.pubkey_key(), &entry.authority_pubkey)?;
        mints.push(ConfiguredMint {
            address: address.to_owned(),
            authority_pubkey: Some(key),
            source,
        });
    }
    Ok(mints)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SharedConfig;

    const KEY_A: &str = "9c4bxJEboZ4MMTTR5jV215CuDvF1hRETxPnPuUGFo2ngVorRQE2";
    const KEY_B: &str = "9bexoMCsYDZNYbRdePtd6L64mPHuMy3JSi7aXzWtrxrNuJPR9Lf";

    fn entry(address: &str, key: &str) -> String {
        format!("[[sv2_messaging.mints]]\naddress = \"{address}\"\nauthority_pubkey = \"{key}\"\n")
    }

    fn endpoints(text: &str) -> Result<Vec<ConfiguredMint>, String> {
        let path = Path::new("pool.toml");
        SharedConfig::parse(path, text)
            .and_then(|c| c.sv2_messaging.endpoints(path))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_list_form_gives_every_mint_in_order_with_its_key() {
        let text = entry("10.0.0.1:34260", KEY_A) + &entry("10.0.0.2:34260", KEY_B);
        let mints = endpoints(&text).unwrap();
        let got: Vec<(&str, String, MintSource)> = mints
            .iter()
            .map(|m| {
                let key = m
                    .authority_pubkey
                    .map(|k| k.to_string())
                    .unwrap_or_default();
                (m.address.as_str(), key, m.source)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("10.0.0.1:34260", KEY_A.to_owned(), MintSource::List(0)),
                ("10.0.0.2:34260", KEY_B.to_owned(), MintSource::List(1)),
            ]
        );
    }

    #[test]
    fn the_single_form_works_as_before() {
        let text = format!(
            "[sv2_messaging]\nmint_address = \"10.0.0.9:1\"\nmint_authority_pubkey = \"{KEY_A}\"\n"
        );
        let mints = endpoints(&text).unwrap();
        assert_eq!(mints.len(), 1);
        assert_eq!(mints[0].address, "10.0.0.9:1");
        assert_eq!(mints[0].source, MintSource::Single);
        assert_eq!(
            mints[0].authority_pubkey.map(|k| k.to_string()).as_deref(),
            Some(KEY_A)
        );
    }

    #[test]
    fn both_forms_at_once_are_refused_naming_the_file_and_the_key() {
        for single in [
            "mint_address = \"10.0.0.9:1\"".to_owned(),
            format!("mint_authority_pubkey = \"{KEY_A}\""),
        ] {
            let text = format!("[sv2_messaging]\n{single}\n") + &entry("10.0.0.1:1", KEY_A);
            let err = endpoints(&text).unwrap_err();
            let key = single.split_once(' ').map(|(k, _)| k).unwrap_or_default();
            assert!(err.contains("pool.toml"), "{err}");
            assert!(err.contains(&format!("sv2_messaging.{key}")), "{err}");
            assert!(err.contains("not both"), "{err}");
        }
    }

    #[test]
    fn bad_lists_are_refused_naming_the_entry() {
        let cases = [
            (
                "[sv2_messaging]\nmints = []\n".to_owned(),
                "sv2_messaging.mints: 0 entries; give 1..=16",
            ),
            (
                (0..17)
                    .map(|i| entry(&format!("10.0.0.{i}:1"), KEY_A))
                    .collect::<String>(),
                "sv2_messaging.mints: 17 entries; give 1..=16",
            ),
            (
                entry("10.0.0.1:1", KEY_A) + &entry(" ", KEY_B),
                "sv2_messaging.mints[1].address: must not be empty",
            ),
            (
                entry("10.0.0.1:1", KEY_A) + &entry("10.0.0.1:1", KEY_B),
                "sv2_messaging.mints[1].address: \"10.0.0.1:1\" is already the address of sv2_messaging.mints[0]",
            ),
            (
                entry("10.0.0.1:1", KEY_A) + &entry("10.0.0.2:1", "nope"),
                "sv2_messaging.mints[1].authority_pubkey",
            ),
            (
                "[[sv2_messaging.mints]]\naddress = \"10.0.0.1:1\"\n".to_owned(),
                "authority_pubkey",
            ),
            (
                entry("10.0.0.1:1", KEY_A) + "port = 1\n",
                "unknown field `port`",
            ),
        ];
        for (text, expected) in cases {
            let err = endpoints(&text).unwrap_err();
            assert!(err.starts_with("pool.toml"), "{err}");
            assert!(err.contains(expected), "expected {expected:?} in {err}");
        }
    }

    #[test]
    fn the_commented_example_of_the_example_file_works_once_uncommented() {
        let text: String = include_str!("../../config/shared/pool.toml")
            .lines()
            .filter(|l| !l.starts_with("mint_address") && !l.starts_with("mint_authority_pubkey"))
            .map(|l| match l.strip_prefix("# ") {
                Some(entry)
                    if entry.starts_with("[[sv2_messaging.mints]]")
                        || entry.starts_with("address =")
                        || entry.starts_with("authority_pubkey =") =>
                {
                    entry
                        .replace("<first mint's public key>", KEY_A)
                        .replace("<second mint's public key>", KEY_B)
                }
                _ => l.to_owned(),
            })
            .map(|l| l + "\n")
            .collect();
        let mints = endpoints(&text).unwrap();
        assert_eq!(mints.len(), 2);
        assert_eq!(mints[1].address, "10.0.0.2:34260");
        let config = SharedConfig::parse(Path::new("pool.toml"), &text).unwrap();
        assert_eq!(
            config.sv2_messaging.max_in_flight, 1024,
            "the section's keys stay its own"
        );
        assert!(!config.redis.enabled);
    }

    #[test]
    fn sixteen_mints_are_allowed() {
        let text: String = (0..16)
            .map(|i| entry(&format!("10.0.0.{i}:1"), KEY_A))
            .collect();
        assert_eq!(endpoints(&text).unwrap().len(), 16);
    }
}

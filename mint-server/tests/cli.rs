//! The `mint-server` command line. (Being an integration test of this
//! package also makes `cargo test` build the binary that the end-to-end
//! tests in `integration-tests` run.)

use std::process::Command;

fn mint_server() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mint-server"));
    command.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    command
}

#[test]
fn keygen_prints_a_keypair_that_parses_and_matches() {
    let out = mint_server().arg("keygen").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let value = |name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = \"")))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_owned()
    };
    let public: mint_quote_proto::AuthorityPublicKey = value("public_key").parse().unwrap();
    let secret: mint_quote_proto::AuthoritySecretKey = value("secret_key").parse().unwrap();
    assert_eq!(secret.public_key(), public);
}

#[test]
fn check_config_accepts_the_example_files() {
    let out = mint_server().arg("check-config").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("9c4bxJEboZ4MMTTR5jV215CuDvF1hRETxPnPuUGFo2ngVorRQE2"),
        "{text}"
    );
}

#[test]
fn a_bad_config_file_fails_with_the_file_and_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("mint.toml");
    std::fs::write(&bad, "[mint]\nauthority_secret_key = \"not-a-key\"\n").unwrap();
    let out = mint_server()
        .args(["--config"])
        .arg(&bad)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mint.toml") && err.contains("mint.authority_secret_key"),
        "{err}"
    );
}

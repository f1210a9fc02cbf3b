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
    // The example keys are public: check-config says so.
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(
        warnings.contains("WARN")
            && warnings.contains("mint.authority_secret_key is a development key")
            && warnings.contains("pools.allowed[0] is a development key")
            && warnings.contains("mint-server keygen"),
        "{warnings}"
    );
}

/// The example files with the Sv2 listener on every interface: with the
/// published development key that is refused, with an error that says
/// how to make real keys; the same with real keys is accepted.
#[test]
fn check_config_refuses_development_keys_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../config");
    let mint = std::fs::read_to_string(format!("{root}/mint.toml")).unwrap();
    let shared = std::fs::read_to_string(format!("{root}/shared/pool.toml")).unwrap();
    let write = |mint: &str, shared: &str| {
        let (m, s) = (dir.path().join("mint.toml"), dir.path().join("pool.toml"));
        std::fs::write(&m, mint).unwrap();
        std::fs::write(&s, shared).unwrap();
        (m, s)
    };
    let check = |paths: &(std::path::PathBuf, std::path::PathBuf)| {
        mint_server()
            .arg("--config")
            .arg(&paths.0)
            .arg("--shared")
            .arg(&paths.1)
            .arg("check-config")
            .output()
            .unwrap()
    };

    let public = shared.replace(
        "mint_address = \"127.0.0.1:34260\"",
        "mint_address = \"0.0.0.0:34260\"",
    );
    let out = check(&write(&mint, &public));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to serve on 0.0.0.0:34260")
            && err.contains("sv2_messaging.mint_address")
            && err.contains("mint-server keygen"),
        "{err}"
    );

    // The HTTP API beyond loopback is refused the same way.
    let http = mint.replace("listen = \"127.0.0.1:3338\"", "listen = \"0.0.0.0:3338\"");
    let out = check(&write(&http, &shared));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("http.listen"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Real keys (a fresh mint key, a fresh pool key) on every interface.
    let keys = |out: std::process::Output| -> (String, String) {
        let text = String::from_utf8(out.stdout).unwrap();
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} = \"")))
                .and_then(|v| v.strip_suffix('"'))
                .unwrap()
                .to_owned()
        };
        (value("public_key"), value("secret_key"))
    };
    let (mint_public, mint_secret) = keys(mint_server().arg("keygen").output().unwrap());
    let (pool_public, _) = keys(mint_server().arg("keygen").output().unwrap());
    let real_mint = http
        .replace(
            "wpRLddnhWjGZvYcE8m5GqMw9gRBHNNLSgnEFjbw49ktfTc3sB",
            &mint_secret,
        )
        .replace(
            "9bexoMCsYDZNYbRdePtd6L64mPHuMy3JSi7aXzWtrxrNuJPR9Lf",
            &pool_public,
        );
    let real_shared = public.replace(
        "9c4bxJEboZ4MMTTR5jV215CuDvF1hRETxPnPuUGFo2ngVorRQE2",
        &mint_public,
    );
    let out = check(&write(&real_mint, &real_shared));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("development key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
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

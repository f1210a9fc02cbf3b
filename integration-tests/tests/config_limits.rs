//! Every numeric setting at the ends of its documented range, all at once,
//! in both files: the mint starts and serves a quote, and the pool's client
//! starts and gets it. Together with the property test of the loaders
//! (`mint-server` config tests: any integer in any setting is either in
//! its range or refused with the file, key, value and range), this shows
//! that nothing a config file holds can panic either process.
//!
//! And the development-key rules: refused beyond loopback, warned about on
//! loopback (mint and pool).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use integration_tests as harness;
use mint_quote_config::{Range, SharedConfig};
use mint_server::app;
use mint_server::config::{MintConfig, Settings};
use pool_client::{PoolSettings, Share};

const MINT: &str = include_str!("../../config/mint.toml");
const SHARED: &str = include_str!("../../config/shared/pool.toml");
const SECRET: &str = include_str!("../../config/pool-secret.toml");

#[derive(Clone, Copy)]
enum End {
    Min,
    Max,
}

/// `text` with every key of `ranges` set to the `end` of its range.
fn at_end(text: &str, ranges: &[Range], end: End) -> String {
    let mut doc: toml::Table = toml::from_str(text).unwrap();
    for range in ranges {
        let (section, name) = range.key.split_once('.').unwrap();
        let value = match end {
            End::Min => range.min,
            End::Max => range.max,
        };
        doc.entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .unwrap()
            .insert(
                name.to_owned(),
                toml::Value::Integer(i64::try_from(value).unwrap()),
            );
    }
    toml::to_string(&doc).unwrap()
}

fn mint_ranges() -> Vec<Range> {
    MintConfig::ranges()
}

/// Starts a mint and a pool client with every setting at `end`, and gets
/// one quote (several tries at the minimum, where the client's whole
/// deadline is 100 ms and a busy machine may miss it).
async fn serve_at(end: End) {
    let dir = tempfile::tempdir().unwrap();
    let mint_text = at_end(MINT, &mint_ranges(), end);
    let shared_text = at_end(SHARED, &SharedConfig::RANGES, end);
    let mut settings = Settings::parse(&mint_text, &shared_text).expect("the ends are in range");
    settings.mint.mint.data_dir = dir.path().to_path_buf();
    settings.sv2_listen.set_port(0);
    for addr in [
        settings.http_listen.as_mut(),
        settings.metrics_listen.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        addr.set_port(0);
    }
    let mint = app::start(settings).await.expect("the mint starts");
    let address = mint.sv2_addr.unwrap().to_string();

    let shared_path = dir.path().join("pool.toml");
    let secret_path = dir.path().join("pool-secret.toml");
    let shared_text = shared_text.replace("127.0.0.1:34260", &address);
    std::fs::write(&shared_path, shared_text).unwrap();
    let secret = at_end(SECRET, &pool_client::settings::OutboxSection::RANGES, end);
    let mut secret: toml::Table = toml::from_str(&secret).unwrap();
    if let Some(outbox) = secret.get_mut("outbox").and_then(|o| o.as_table_mut()) {
        let path = dir.path().join("outbox.redb").display().to_string();
        outbox.insert("path".into(), toml::Value::String(path));
    }
    std::fs::write(&secret_path, toml::to_string(&secret).unwrap()).unwrap();
    let pool = PoolSettings::load(&shared_path, &secret_path).expect("the pool loads");
    let client = integration_tests::start_client(pool.client.expect("sv2 enabled"));
    let keyset = client
        .wait_for_keyset(harness::TIMEOUT)
        .await
        .expect("a keyset announcement")
        .keyset_id;
    let share = Share {
        amount: 1,
        ..Share::from(harness::request(0, 1, &keyset))
    };
    let tries = match end {
        End::Min => 20,
        End::Max => 1,
    };
    let mut last = None;
    for _ in 0..tries {
        match client.request_quote(&share).await {
            Ok(quote) => {
                assert_eq!(quote.amount, 1);
                client.shutdown();
                mint.stop().await;
                return;
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no quote with every setting at its end: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_setting_at_its_minimum_starts_and_serves() {
    serve_at(End::Min).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_setting_at_its_maximum_starts_and_serves() {
    serve_at(End::Max).await;
}

/// A `tracing` writer into a shared buffer, to read what was logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Captures what this thread logs while the guard lives.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

/// On loopback the development keys are served with a warning and the
/// metric; on any other address the mint does not start.
#[tokio::test(flavor = "current_thread")]
async fn the_mint_serves_development_keys_on_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = Captured::default();
    let guard = log.install();
    let mint = harness::start_mint(dir.path(), |_| {}).await;
    drop(guard);
    let text = log.text();
    assert!(
        text.contains("WARN")
            && text.contains("mint.authority_secret_key is a development key")
            && text.contains("mint-server keygen"),
        "{text}"
    );
    let scrape = harness::http::request(mint.metrics_addr.unwrap(), "GET", "/metrics", "")
        .await
        .1;
    assert_eq!(
        harness::http::sample(&scrape, "mint_quote_development_keys"),
        1.0
    );
    mint.stop().await;

    for (what, edit) in [
        (
            "sv2_messaging.mint_address",
            Box::new(|s: &mut Settings| s.sv2_listen = "0.0.0.0:0".parse().unwrap())
                as Box<dyn Fn(&mut Settings)>,
        ),
        (
            "http.listen",
            Box::new(|s: &mut Settings| s.http_listen = Some("0.0.0.0:0".parse().unwrap())),
        ),
    ] {
        let settings = harness::settings(dir.path(), edit);
        let err = app::start(settings)
            .await
            .err()
            .expect("development keys beyond loopback are refused")
            .to_string();
        assert!(
            err.contains(what) && err.contains("mint-server keygen"),
            "{err}"
        );
    }
}

/// Real keys: no warning, and the metric says so.
#[tokio::test(flavor = "current_thread")]
async fn real_keys_give_no_warning() {
    let dir = tempfile::tempdir().unwrap();
    let pool = mint_quote_proto::AuthorityKeypair::generate();
    let log = Captured::default();
    let guard = log.install();
    let mint = harness::start_mint(dir.path(), |s| {
        s.keypair = mint_quote_proto::AuthorityKeypair::generate();
        s.shared.sv2_messaging.mint_authority_pubkey = Some(s.keypair.public().to_string());
        s.allowed_pools = vec![pool.public()];
    })
    .await;
    drop(guard);
    assert!(!log.text().contains("development key"), "{}", log.text());
    let scrape = harness::http::request(mint.metrics_addr.unwrap(), "GET", "/metrics", "")
        .await
        .1;
    assert!(scrape.contains("mint_quote_development_keys 0"), "{scrape}");
    mint.stop().await;
}

/// The pool warns when its own key, or the mint key it pins, is one of
/// the published development keys.
#[tokio::test(flavor = "current_thread")]
async fn the_pool_warns_about_development_keys() {
    let log = Captured::default();
    let guard = log.install();
    let client = integration_tests::start_client(harness::client_config("127.0.0.1:9"));
    drop(guard);
    client.shutdown();
    let text = log.text();
    assert!(
        text.contains("WARN")
            && text.contains("pool_secret_key is a development key")
            && text.contains("sv2_messaging.mint_authority_pubkey is a development key"),
        "{text}"
    );

    let mut config = harness::client_config("127.0.0.1:9");
    config.pool_keypair = mint_quote_proto::AuthorityKeypair::generate();
    config.mints[0].key = mint_quote_proto::AuthorityKeypair::generate().public();
    assert!(config.published_keys().is_empty());
}

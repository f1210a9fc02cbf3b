//! Building the CDK mint: database, seed, unit, payment method, and the
//! start-up checks that catch a mint about to serve the wrong keys.
//!
//! The database is SQLite (a file, or memory for tests) or PostgreSQL. On
//! PostgreSQL several mints may share one database: each holds a copy of
//! the same seed file (the seed never goes into the database, whose
//! backups and replicas are read by more people than the mint's keys
//! should be), each refuses to start when its seed does not derive the
//! database's keysets, and each reads the keysets again every
//! `postgres.keyset_refresh_ms`, so a rotation by one is served by all.

use std::path::Path;
use std::sync::Arc;

use cdk::cdk_database::{self, MintDatabase, MintKeysDatabase};
use cdk::mint::{MintBuilder, MintMeltLimits, UnitConfig};
use cdk::nuts::{CurrencyUnit, PaymentMethod};
use cdk::Mint;
use cdk_sqlite::MintSqliteDatabase;

use crate::config::{DatabaseKind, Settings};
use crate::payment::{MiningSharePayment, MINING_SHARE_METHOD};

/// Why the mint could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The data directory or the seed file could not be used.
    #[error("{path}: {message}")]
    Storage {
        /// The file or directory.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Database(#[from] cdk_database::Error),
    /// `mint.database = "postgres"` in a build without PostgreSQL.
    #[error("mint.database = \"postgres\", but this mint-server was built without PostgreSQL; build it with `--features postgres`")]
    NoPostgres,
    /// CDK refused the configuration or failed to start.
    #[error("cdk: {0}")]
    Cdk(#[from] cdk::Error),
    /// The keys the mint would serve do not match their ids: the seed is
    /// not the one the database was created with.
    #[error("keyset {id} does not match its keys ({reason}); is {seed} the seed this database was created with?")]
    KeysetMismatch {
        /// The keyset.
        id: String,
        /// What `verify_id` said.
        reason: String,
        /// The seed file.
        seed: String,
    },
}

/// The amounts of the unit's keyset: 2^0 .. 2^63, the 64-key keyset pools
/// expect.
pub fn keyset_amounts() -> Vec<u64> {
    (0..64).map(|i| 1u64 << i).collect()
}

/// The CDK unit for `unit`, built the way CDK builds units it parses, so
/// that it matches the unit of quotes and keysets.
pub fn cdk_unit(unit: &mint_quote_proto::Unit) -> CurrencyUnit {
    CurrencyUnit::custom(unit.as_str())
}

/// The payment method of mining-share quotes.
pub fn mining_share_method() -> PaymentMethod {
    PaymentMethod::Custom(MINING_SHARE_METHOD.to_owned())
}

fn storage_error(path: &Path, e: impl ToString) -> BuildError {
    BuildError::Storage {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Reads the 64-byte seed from `path`, creating it (mode 0600) on first
/// start.
fn load_or_create_seed(path: &Path) -> Result<Vec<u8>, BuildError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let seed = hex::decode(text.trim())
                .map_err(|e| storage_error(path, format!("not hex: {e}")))?;
            if seed.len() != 64 {
                return Err(storage_error(
                    path,
                    format!("seed must be 64 bytes, found {}", seed.len()),
                ));
            }
            Ok(seed)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use rand::RngCore;
            let mut seed = vec![0u8; 64];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            write_private(path, &hex::encode(&seed)).map_err(|e| storage_error(path, e))?;
            tracing::info!(path = %path.display(), "created a new keyset seed; back it up");
            Ok(seed)
        }
        Err(e) => Err(storage_error(path, e)),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// What the mint keeps its state in: CDK's quote, proof and keyset
/// stores, on one database (SQLite or PostgreSQL).
pub trait MintStore:
    MintDatabase<cdk_database::Error> + MintKeysDatabase<Err = cdk_database::Error> + Send + Sync
{
}

impl<T> MintStore for T where
    T: MintDatabase<cdk_database::Error>
        + MintKeysDatabase<Err = cdk_database::Error>
        + Send
        + Sync
{
}

/// The database handle CDK's mint and its key store both use.
pub type Database = Arc<dyn MintStore>;

/// Opens the database `settings` name, creating the data directory.
pub async fn open_database(settings: &Settings) -> Result<Database, BuildError> {
    let data_dir = &settings.mint.mint.data_dir;
    Ok(match settings.mint.mint.database {
        DatabaseKind::Memory => Arc::new(cdk_sqlite::mint::memory::empty().await?),
        DatabaseKind::Sqlite => {
            std::fs::create_dir_all(data_dir).map_err(|e| storage_error(data_dir, e))?;
            Arc::new(MintSqliteDatabase::new(data_dir.join("mint.sqlite")).await?)
        }
        DatabaseKind::Postgres => open_postgres(settings).await?,
    })
}

/// Tries at opening a PostgreSQL database before giving up.
#[cfg(feature = "postgres")]
const POSTGRES_OPEN_TRIES: u32 = 5;

/// Opens (and migrates) the PostgreSQL database. Two mints started at once
/// on an empty database both run the migrations; PostgreSQL lets one
/// commit and fails the other's transaction, whole, so the loser tries
/// again and finds the schema in place.
#[cfg(feature = "postgres")]
async fn open_postgres(settings: &Settings) -> Result<Database, BuildError> {
    use cdk_postgres::{MintPgDatabase, PgConfig};
    let pg = &settings.mint.postgres;
    let config = PgConfig::new(
        &pg.url,
        None,
        Some(pg.max_connections),
        Some(pg.connect_timeout_secs),
    );
    let mut tries = 0;
    loop {
        tries += 1;
        match MintPgDatabase::new(config.clone()).await {
            Ok(db) => return Ok(Arc::new(db)),
            Err(e) if tries < POSTGRES_OPEN_TRIES => {
                let delay = std::time::Duration::from_millis(200 << tries);
                tracing::warn!(error = %e, attempt = tries, retry_in_ms = delay.as_millis() as u64, "cannot open the PostgreSQL database yet");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_: &Settings) -> Result<Database, BuildError> {
    Err(BuildError::NoPostgres)
}

/// Builds and starts the CDK mint on `db`.
pub async fn build_mint(settings: &Settings, db: Database) -> Result<Arc<Mint>, BuildError> {
    let data_dir = &settings.mint.mint.data_dir;
    std::fs::create_dir_all(data_dir).map_err(|e| storage_error(data_dir, e))?;
    let seed_path = data_dir.join("seed.hex");
    let seed = load_or_create_seed(&seed_path)?;

    let unit = cdk_unit(&settings.unit);
    // Only a shared database can change under the mint's feet.
    let keyset_refresh = (settings.mint.mint.database == DatabaseKind::Postgres)
        .then(|| settings.mint.postgres.keyset_refresh());
    let mut builder =
        MintBuilder::new(db.clone() as Arc<dyn MintDatabase<cdk_database::Error> + Send + Sync>)
            .with_name(settings.mint.mint.name.clone())
            .with_description("Cashu mint for mining shares: quotes are created by the pool".into())
            .with_keyset_refresh_interval(keyset_refresh);
    builder.configure_unit(
        unit.clone(),
        UnitConfig {
            amounts: keyset_amounts(),
            input_fee_ppk: settings.mint.mint.input_fee_ppk,
        },
    )?;
    builder
        .add_payment_processor(
            unit.clone(),
            mining_share_method(),
            MintMeltLimits::new(1, settings.mint.mint.max_quote_amount),
            Arc::new(MiningSharePayment::new(unit.clone())),
        )
        .await?;
    // What the configuration says the mint offers, before CDK merges in
    // what a previous start stored.
    let info = builder.current_mint_info();
    let mint = builder
        .build_with_seed(
            db as Arc<dyn MintKeysDatabase<Err = cdk_database::Error> + Send + Sync>,
            &seed,
        )
        .await?;

    // A restart with another seed builds fine but serves keys whose ids do
    // not verify; wallets would then mint unspendable tokens. Refuse.
    for keyset in mint.pubkeys().keysets {
        keyset.verify_id().map_err(|e| BuildError::KeysetMismatch {
            id: keyset.id.to_string(),
            reason: e.to_string(),
            seed: seed_path.display().to_string(),
        })?;
    }
    publish_mint_info(&mint, info, &unit).await?;
    mint.start().await?;
    Ok(Arc::new(mint))
}

/// Stores the NUT-06 info wallets read at `/v1/info`: the one derived from
/// the configuration, so that a changed name or limit takes effect at the
/// next start (CDK otherwise keeps what its first start stored), and
/// advertising only what the mint does: NUT-04 minting of mining-share
/// quotes (created by the pool, minted by wallets), and no NUT-05 melting,
/// which the payment processor refuses.
async fn publish_mint_info(
    mint: &Mint,
    mut info: cdk::nuts::MintInfo,
    unit: &CurrencyUnit,
) -> Result<(), BuildError> {
    let stored = mint.mint_info().await?;
    // The key CDK derived from the seed, which the builder does not know.
    info.pubkey = stored.pubkey;
    info.nuts
        .nut05
        .remove_settings(unit, &mining_share_method());
    info.nuts.nut05.disabled = info.nuts.nut05.methods.is_empty();
    if info != stored {
        mint.set_mint_info(info).await?;
    }
    Ok(())
}

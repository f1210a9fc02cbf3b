//! A miner's wallet: CDK's `Wallet`, on an in-memory store, against a
//! mint's real HTTP API, minting mining-share quotes with the share's
//! locking key (NUT-20).

use std::net::SocketAddr;
use std::sync::Arc;

use cdk::amount::SplitTarget;
use cdk::cdk_database::WalletDatabase;
use cdk::nuts::{CurrencyUnit, PaymentMethod, Proofs, SecretKey};
use cdk::wallet::Wallet;
use cdk_sqlite::WalletSqliteDatabase;

/// A wallet of unit `hash` on one mint.
pub struct MinerWallet {
    /// CDK's wallet, for what the helpers below do not cover.
    pub wallet: Wallet,
    store: Arc<WalletSqliteDatabase>,
}

/// The payment method of mining-share quotes.
pub fn mining_share() -> PaymentMethod {
    PaymentMethod::Custom("mining_share".into())
}

impl MinerWallet {
    /// A fresh wallet (seed of `seed` bytes) on the mint serving `http`.
    pub async fn new(http: SocketAddr, seed: u8) -> MinerWallet {
        let store = match cdk_sqlite::wallet::memory::empty().await {
            Ok(store) => Arc::new(store),
            Err(e) => panic!("a wallet store in memory: {e}"),
        };
        let wallet = Wallet::new(
            &format!("http://{http}"),
            CurrencyUnit::custom("hash"),
            store.clone(),
            [seed; 64],
            None,
        )
        .unwrap_or_else(|e| panic!("a wallet for {http}: {e}"));
        MinerWallet { wallet, store }
    }

    /// Fetches quote `quote_id` from the mint and keeps `secret` with it
    /// as the key it is locked to, as a miner's wallet does.
    pub async fn take_quote(&self, quote_id: &str, secret: &secp256k1::SecretKey) {
        let mut quote = self
            .wallet
            .fetch_mint_quote(quote_id, Some(mining_share()))
            .await
            .unwrap_or_else(|e| panic!("fetching quote {quote_id}: {e}"));
        quote.secret_key = Some(
            SecretKey::from_slice(&secret.secret_bytes())
                .unwrap_or_else(|e| panic!("a secp256k1 key is a cashu key: {e}")),
        );
        if let Err(e) = self.store.add_mint_quote(quote).await {
            panic!("storing quote {quote_id}: {e}");
        }
    }

    /// Mints a quote taken before: its proofs, or the mint's refusal.
    pub async fn mint(&self, quote_id: &str) -> Result<Proofs, cdk::Error> {
        self.wallet
            .mint(quote_id, SplitTarget::default(), None)
            .await
    }
}

/// The total of `proofs`.
pub fn total(proofs: &Proofs) -> u64 {
    proofs.iter().map(|p| u64::from(p.amount)).sum()
}

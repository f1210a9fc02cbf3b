//! The mint's active keyset for its unit, watched for changes so that both
//! paths can announce it: `ActiveKeyset` on every Sv2 connection, a JSON key
//! in Redis.

use std::sync::Arc;
use std::time::Duration;

use cdk::Mint;
use mint_quote_proto::{ActiveKeyset, KeysetId, Unit};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cashu_mint::cdk_unit;

/// The active keyset of `unit`, if the mint has one.
pub fn active_keyset(mint: &Mint, unit: &Unit) -> Option<ActiveKeyset> {
    let cdk_unit = cdk_unit(unit);
    mint.keysets()
        .keysets
        .into_iter()
        .find(|k| k.active && k.unit == cdk_unit)
        .and_then(|k| {
            Some(ActiveKeyset {
                unit: unit.clone(),
                keyset_id: KeysetId::from_slice(&k.id.to_bytes()).ok()?,
                input_fee_ppk: k.input_fee_ppk,
            })
        })
}

/// The active keyset, published to every receiver, and the task that
/// checks every `interval` whether it changed (a rotation), until
/// `shutdown`; the caller runs the task.
pub fn watch_active_keyset(
    mint: Arc<Mint>,
    unit: Unit,
    initial: ActiveKeyset,
    interval: Duration,
    shutdown: CancellationToken,
) -> (
    watch::Receiver<ActiveKeyset>,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (tx, rx) = watch::channel(initial);
    let task = async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            if let Some(now) = active_keyset(&mint, &unit) {
                tx.send_if_modified(|current| {
                    if *current == now {
                        return false;
                    }
                    tracing::info!(keyset_id = %now.keyset_id, unit = %now.unit, "active keyset changed");
                    *current = now;
                    true
                });
            }
        }
    };
    (rx, task)
}

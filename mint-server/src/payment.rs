//! The payment processor behind the `mining_share` method.
//!
//! CDK needs a processor for every (unit, method) it serves. For mining
//! shares the payment is the share itself, and quotes are created already
//! paid by [`crate::quotes::QuoteIssuer`], never through this processor. It
//! therefore refuses every request CDK forwards to it: that is what keeps
//! anyone from creating a mining-share quote over the HTTP API.

use std::collections::HashMap;
use std::pin::Pin;

use async_trait::async_trait;
use cdk::cdk_payment::{
    CreateIncomingPaymentResponse, Error as PaymentError, Event, IncomingPaymentOptions,
    MakePaymentResponse, MintPayment, OutgoingPaymentOptions, PaymentIdentifier,
    PaymentQuoteResponse, SettingsResponse, WaitPaymentResponse,
};
use cdk::nuts::CurrencyUnit;
use futures::Stream;

/// Name of the payment method of mining-share quotes.
pub const MINING_SHARE_METHOD: &str = "mining_share";

/// The `mining_share` processor: it announces the method and refuses every
/// operation CDK would route to it.
#[derive(Debug, Clone)]
pub struct MiningSharePayment {
    unit: CurrencyUnit,
}

impl MiningSharePayment {
    /// A processor for `unit`.
    pub fn new(unit: CurrencyUnit) -> Self {
        MiningSharePayment { unit }
    }
}

fn refused(what: &str) -> PaymentError {
    PaymentError::Custom(format!(
        "{what} is not available for {MINING_SHARE_METHOD}: quotes are created only by the pool over Sv2 or Redis"
    ))
}

#[async_trait]
impl MintPayment for MiningSharePayment {
    type Err = PaymentError;

    async fn get_settings(&self) -> Result<SettingsResponse, Self::Err> {
        Ok(SettingsResponse {
            unit: self.unit.to_string(),
            bolt11: None,
            bolt12: None,
            onchain: None,
            custom: HashMap::from([(MINING_SHARE_METHOD.to_owned(), "{}".to_owned())]),
        })
    }

    async fn create_incoming_payment_request(
        &self,
        _options: IncomingPaymentOptions,
    ) -> Result<CreateIncomingPaymentResponse, Self::Err> {
        Err(refused("creating a mint quote over HTTP"))
    }

    async fn get_payment_quote(
        &self,
        _unit: &CurrencyUnit,
        _options: OutgoingPaymentOptions,
    ) -> Result<PaymentQuoteResponse, Self::Err> {
        Err(refused("melting"))
    }

    async fn make_payment(
        &self,
        _unit: &CurrencyUnit,
        _options: OutgoingPaymentOptions,
    ) -> Result<MakePaymentResponse, Self::Err> {
        Err(refused("melting"))
    }

    async fn wait_payment_event(
        &self,
    ) -> Result<Pin<Box<dyn Stream<Item = Event> + Send>>, Self::Err> {
        // Payments arrive with the quote, never later: a stream that stays
        // open and yields nothing.
        Ok(Box::pin(futures::stream::pending()))
    }

    fn is_payment_event_stream_active(&self) -> bool {
        true
    }

    fn cancel_payment_event_stream(&self) {}

    async fn check_incoming_payment_status(
        &self,
        _payment_identifier: &PaymentIdentifier,
    ) -> Result<Vec<WaitPaymentResponse>, Self::Err> {
        // Every mining-share quote is stored paid; nothing more will come.
        Ok(Vec::new())
    }

    async fn check_outgoing_payment(
        &self,
        _payment_identifier: &PaymentIdentifier,
    ) -> Result<MakePaymentResponse, Self::Err> {
        Err(refused("melting"))
    }
}

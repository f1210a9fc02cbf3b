//! The common messages against the SRI crates' own types
//! (`common_messages_sv2`, `extensions_sv2`): each built with SRI and with
//! this crate carries the same extension type, message type and payload,
//! byte for byte, and each side decodes the other's. The one value SRI
//! cannot express, `SetupConnection.protocol = 3`, is checked to be the
//! only byte that differs from SRI's encoding of protocol 0.

use binary_sv2::{Seq064K, Str0255};
use common_messages_sv2 as sri;
use extensions_sv2 as sri_ext;
use mint_quote_proto::constants::MINT_QUOTE_PROTOCOL;
use mint_quote_proto::*;

/// SRI's encoding of `value`, as the payload of a frame.
fn sri_payload<T: binary_sv2::Encodable + binary_sv2::GetSize>(value: T) -> Vec<u8> {
    binary_sv2::to_bytes(value).expect("SRI encodes its own message")
}

/// Our frame of `ours` has SRI's header fields and payload, and SRI's
/// payload decodes to `ours`.
fn agree(ours: &Message, extension_type: u16, msg_type: u8, payload: Vec<u8>) {
    let frame = ours.to_frame().unwrap();
    assert_eq!(
        (
            frame.extension_type(),
            frame.msg_type(),
            frame.channel_msg()
        ),
        (extension_type, msg_type, false),
        "{} header",
        ours.name()
    );
    assert_eq!(
        frame.payload(),
        payload.as_slice(),
        "{} payload",
        ours.name()
    );
    let theirs = Frame::new(extension_type, false, msg_type, &payload).unwrap();
    assert_eq!(&Message::from_frame(&theirs).unwrap(), ours);
}

fn str255(s: &str) -> Str0255<'_> {
    s.try_into().unwrap()
}

fn seq(v: &[u16]) -> Seq064K<'static, u16> {
    Seq064K::new(v.to_vec()).unwrap()
}

fn setup_connection(protocol: u8) -> Message {
    Message::SetupConnection(SetupConnection {
        protocol,
        min_version: 2,
        max_version: 2,
        flags: 0,
        endpoint_host: "mint.example".into(),
        endpoint_port: 34260,
        vendor: "pool".into(),
        hardware_version: "".into(),
        firmware: "0.1".into(),
        device_id: "pool-1".into(),
    })
}

#[test]
fn setup_connection_and_its_replies_are_the_sri_messages() {
    let sri_setup = sri::SetupConnection {
        protocol: sri::Protocol::MiningProtocol,
        min_version: 2,
        max_version: 2,
        flags: 0,
        endpoint_host: str255("mint.example"),
        endpoint_port: 34260,
        vendor: str255("pool"),
        hardware_version: str255(""),
        firmware: str255("0.1"),
        device_id: str255("pool-1"),
    };
    let payload = sri_payload(sri_setup);
    agree(
        &setup_connection(sri::SV2_MINING_PROTOCOL_DISCRIMINANT),
        0x0000,
        sri::MESSAGE_TYPE_SETUP_CONNECTION,
        payload.clone(),
    );
    // Protocol 3 has no SRI `Protocol` value: the first byte is the only
    // difference from the message SRI can build.
    let ours = setup_connection(MINT_QUOTE_PROTOCOL).to_frame().unwrap();
    assert_eq!(ours.payload()[0], 3);
    assert_eq!(&ours.payload()[1..], &payload[1..]);

    agree(
        &Message::SetupConnectionSuccess(SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        }),
        0x0000,
        sri::MESSAGE_TYPE_SETUP_CONNECTION_SUCCESS,
        sri_payload(sri::SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        }),
    );
    for code in [
        sri::ERROR_CODE_SETUP_CONNECTION_UNSUPPORTED_PROTOCOL,
        sri::ERROR_CODE_SETUP_CONNECTION_PROTOCOL_VERSION_MISMATCH,
        sri::ERROR_CODE_SETUP_CONNECTION_UNSUPPORTED_FEATURE_FLAGS,
    ] {
        agree(
            &Message::SetupConnectionError(SetupConnectionError {
                flags: 0,
                error_code: code.into(),
            }),
            0x0000,
            sri::MESSAGE_TYPE_SETUP_CONNECTION_ERROR,
            sri_payload(sri::SetupConnectionError {
                flags: 0,
                error_code: str255(code),
            }),
        );
    }
}

#[test]
fn extension_negotiation_is_the_sri_extension() {
    let ext = sri_ext::EXTENSION_TYPE_EXTENSIONS_NEGOTIATION;
    agree(
        &Message::RequestExtensions(RequestExtensions {
            request_id: 3,
            requested_extensions: vec![0x4d51, 0x0002],
        }),
        ext,
        sri_ext::MESSAGE_TYPE_REQUEST_EXTENSIONS,
        sri_payload(sri_ext::RequestExtensions {
            request_id: 3,
            requested_extensions: seq(&[0x4d51, 0x0002]),
        }),
    );
    agree(
        &Message::RequestExtensionsSuccess(RequestExtensionsSuccess {
            request_id: 3,
            supported_extensions: vec![0x4d51],
        }),
        ext,
        sri_ext::MESSAGE_TYPE_REQUEST_EXTENSIONS_SUCCESS,
        sri_payload(sri_ext::RequestExtensionsSuccess {
            request_id: 3,
            supported_extensions: seq(&[0x4d51]),
        }),
    );
    agree(
        &Message::RequestExtensionsError(RequestExtensionsError {
            request_id: 3,
            unsupported_extensions: vec![0x0002],
            required_extensions: vec![0x4d51],
        }),
        ext,
        sri_ext::MESSAGE_TYPE_REQUEST_EXTENSIONS_ERROR,
        sri_payload(sri_ext::RequestExtensionsError {
            request_id: 3,
            unsupported_extensions: seq(&[0x0002]),
            required_extensions: seq(&[0x4d51]),
        }),
    );
}

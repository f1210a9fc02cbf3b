//! Turning a frame into one printed line: readable text or JSON.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use mint_quote_proto::{Frame, Message};
use serde_json::json;

/// Which way a frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the pool to the mint.
    PoolToMint,
    /// From the mint to the pool.
    MintToPool,
}

impl Direction {
    /// `pool->mint` or `mint->pool`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::PoolToMint => "pool->mint",
            Direction::MintToPool => "mint->pool",
        }
    }
}

/// How lines are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One readable line per frame.
    Text,
    /// One JSON object per line, for jq and log pipelines.
    Json,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Prints frames to a sink, filtered by message name.
#[derive(Clone)]
pub struct Printer {
    format: Format,
    filter: Option<Arc<HashSet<String>>>,
    sink: Arc<dyn Fn(String) + Send + Sync>,
}

impl Printer {
    /// Prints in `format`, only messages named in `filter` (all if `None`;
    /// frames that do not decode are always printed), to `sink`.
    pub fn new(
        format: Format,
        filter: Option<HashSet<String>>,
        sink: Arc<dyn Fn(String) + Send + Sync>,
    ) -> Self {
        Printer {
            format,
            filter: filter.map(Arc::new),
            sink,
        }
    }

    /// Prints one frame of connection `conn`.
    pub fn frame(&self, conn: u64, direction: Direction, frame: &Frame) {
        let decoded = Message::from_frame(frame);
        if let (Some(filter), Ok(message)) = (&self.filter, &decoded) {
            if !filter.contains(message.name()) {
                return;
            }
        }
        let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let head = json!({
            "time": time,
            "conn": conn,
            "direction": direction.as_str(),
            "extension_type": frame.extension_type(),
            "channel_msg": frame.channel_msg(),
            "msg_type": frame.msg_type(),
            "length": frame.payload().len(),
        });
        let line = match self.format {
            Format::Json => {
                let mut object = head;
                match &decoded {
                    Ok(message) => {
                        object["message"] = json!(message.name());
                        object["fields"] = message.fields();
                    }
                    Err(e) => object["error"] = json!(e.to_string()),
                }
                object["payload_hex"] = json!(hex(frame.payload()));
                object.to_string()
            }
            Format::Text => {
                let prefix = format!(
                    "{time} #{conn} {} ext={:#06x} ch={} type={:#04x} len={}",
                    direction.as_str(),
                    frame.extension_type(),
                    u8::from(frame.channel_msg()),
                    frame.msg_type(),
                    frame.payload().len()
                );
                match &decoded {
                    Ok(message) => format!("{prefix} {} {}", message.name(), message.fields()),
                    Err(e) => format!("{prefix} UNDECODED ({e}) {}", hex(frame.payload())),
                }
            }
        };
        (self.sink)(line);
    }

    /// Prints a note about connection `conn` (opened, closed, failed).
    pub fn note(&self, conn: u64, text: &str) {
        let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let line = match self.format {
            Format::Json => json!({"time": time, "conn": conn, "note": text}).to_string(),
            Format::Text => format!("{time} #{conn} -- {text}"),
        };
        (self.sink)(line);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn capture(
        format: Format,
        filter: Option<HashSet<String>>,
    ) -> (Printer, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let printer = Printer::new(
            format,
            filter,
            Arc::new(move |l| sink.lock().unwrap().push(l)),
        );
        (printer, lines)
    }

    #[test]
    fn a_frame_that_does_not_decode_is_printed_as_hex_with_the_reason() {
        let (printer, lines) = capture(Format::Text, None);
        let frame = Frame::new(0x4d51, false, 0x80, &[1, 2, 3]).unwrap();
        printer.frame(3, Direction::PoolToMint, &frame);
        let line = lines.lock().unwrap()[0].clone();
        assert!(
            line.contains("#3 pool->mint ext=0x4d51 ch=0 type=0x80 len=3 UNDECODED"),
            "{line}"
        );
        assert!(line.ends_with("010203"), "{line}");
    }

    #[test]
    fn json_lines_carry_the_fields_and_the_filter_applies() {
        let (printer, lines) = capture(
            Format::Json,
            Some(HashSet::from(["ActiveKeyset".to_owned()])),
        );
        let keyset = Message::ActiveKeyset(mint_quote_proto::ActiveKeyset {
            unit: mint_quote_proto::Unit::hash(),
            keyset_id: "009a1f293253e41e".parse().unwrap(),
            input_fee_ppk: 0,
        });
        printer.frame(1, Direction::MintToPool, &keyset.to_frame().unwrap());
        let other = Message::SetupConnectionSuccess(mint_quote_proto::SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        });
        printer.frame(1, Direction::MintToPool, &other.to_frame().unwrap());
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 1, "the filter drops other messages");
        let value: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(value["message"], "ActiveKeyset");
        assert_eq!(value["fields"]["keyset_id"], "009a1f293253e41e");
        assert_eq!(value["direction"], "mint->pool");
    }

    #[test]
    fn keepalive_pings_and_pongs_are_decoded() {
        let (printer, lines) = capture(Format::Json, None);
        let ping = Message::Ping(mint_quote_proto::Ping { nonce: 0x0102 });
        let pong = Message::Pong(mint_quote_proto::Pong { nonce: 0x0102 });
        printer.frame(2, Direction::PoolToMint, &ping.to_frame().unwrap());
        printer.frame(2, Direction::MintToPool, &pong.to_frame().unwrap());
        let lines = lines.lock().unwrap();
        let values: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(values[0]["message"], "Ping");
        assert_eq!(values[0]["fields"]["nonce"], 0x0102);
        assert_eq!(values[1]["message"], "Pong");
        assert_eq!(values[1]["fields"]["nonce"], 0x0102);
    }
}

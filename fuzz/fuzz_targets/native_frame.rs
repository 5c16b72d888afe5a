//! The native protocol's client frame decoder, and the channel names frames carry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::{Channel, ClientFrame};

fuzz_target!(|data: &[u8]| {
    // The transport hands the hub text frames only: UTF-8 is checked before decoding.
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(frame) = ClientFrame::parse(text) {
        assert!(!frame.kind.is_empty(), "a frame's type is never empty");
        for field in ["channel", "token", "text"] {
            let _ = frame.data_str(field);
        }
        if let Ok(channel) = frame.data_str("channel") {
            check_channel(channel);
        }
    }
    check_channel(text);
});

/// A name the parser accepts has no whitespace or control characters and keeps its namespace.
fn check_channel(name: &str) {
    if let Ok(channel) = Channel::parse(name) {
        assert!(!name.chars().any(|c| c.is_whitespace() || c.is_control()), "{name:?}");
        assert!(name.starts_with(channel.namespace()), "{name:?}");
    }
}

//! The Engine.IO and Socket.IO packet decoders, on WebSocket frames and polling bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_socketio::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    fuzzing::engine_packet(text);
    fuzzing::polling_body(text);
    fuzzing::socketio_packet(text);
    // What a `4` (message) packet carries is a Socket.IO packet.
    if let Some(inner) = text.strip_prefix('4') {
        fuzzing::socketio_packet(inner);
    }
});

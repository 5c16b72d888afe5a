//! Entry points for the fuzz targets in `fuzz/` (built only with `--cfg fuzzing`, which
//! `cargo fuzz` sets): each decodes untrusted text as the server does and checks what must
//! hold for any input, panicking when it does not.

use crate::engine::packet::Packet;
use crate::sio::packet::SioPacket;

/// One Engine.IO packet: decoding never panics, and a decoded packet survives encoding.
pub fn engine_packet(text: &str) {
    if let Ok(packet) = Packet::decode(text) {
        assert_eq!(Packet::decode(&packet.encode()).as_ref(), Ok(&packet), "{text:?}");
    }
}

/// A long-polling body: the packets it holds survive a round trip as one body.
pub fn polling_body(body: &str) {
    if let Ok(packets) = Packet::decode_polling(body) {
        assert_eq!(Packet::decode_polling(&Packet::encode_polling(&packets)).as_ref(), Ok(&packets), "{body:?}");
    }
}

/// One Socket.IO packet: decoding never panics, and a packet it accepts encodes to text
/// that decodes to the same packet.
pub fn socketio_packet(text: &str) {
    if let Ok(packet) = SioPacket::decode(text) {
        assert_eq!(SioPacket::decode(&packet.encode()).as_ref(), Ok(&packet), "{text:?}");
    }
}

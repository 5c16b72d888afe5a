//! An endpoint's `compression` section: checked, then resolved to the hub's
//! [`CompressionSpec`] with the defaults under the manifest's values.

use switchboard_hub::CompressionSpec;

use crate::manifest::{Compression, Endpoint};
use crate::{LoadedManifest, ManifestError};

/// zlib's levels; 0 would send deflate's framing around uncompressed bytes.
const LEVELS: std::ops::RangeInclusive<u32> = 1..=9;
/// The window sizes both RFC 7692 peers and zlib accept (zlib cannot deflate with 8).
const WINDOW_BITS: std::ops::RangeInclusive<u8> = 9..=15;

/// Checks one endpoint's section.
pub(crate) fn validate(loaded: &LoadedManifest, name: &str, endpoint: &Endpoint, errors: &mut Vec<ManifestError>) {
    let Some(c) = &endpoint.compression else { return };
    let at = |field: &'static str| ["websockets", name, "compression", field];
    if c.level.is_some_and(|l| !LEVELS.contains(&l)) {
        errors.push(loaded.error(&at("level"), "use 1 (fastest, the default) to 9 (smallest)"));
    }
    if c.window_bits.is_some_and(|w| !WINDOW_BITS.contains(&w)) {
        let message = "use 9 (512-byte window, least memory) to 15 (32 KiB, the default)";
        errors.push(loaded.error(&at("window_bits"), message));
    }
}

/// The endpoint's settings, or `None` when compression is off.
pub(crate) fn resolve(section: Option<&Compression>) -> Option<CompressionSpec> {
    let c = section.filter(|c| c.enabled != Some(false))?;
    let d = CompressionSpec::default();
    Some(CompressionSpec {
        min_bytes: c.min_bytes.unwrap_or(d.min_bytes),
        level: c.level.unwrap_or(d.level),
        server_context_takeover: c.server_context_takeover.unwrap_or(d.server_context_takeover),
        client_context_takeover: c.client_context_takeover.unwrap_or(d.client_context_takeover),
        window_bits: c.window_bits.unwrap_or(d.window_bits),
    })
}

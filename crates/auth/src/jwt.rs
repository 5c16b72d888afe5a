//! JWT verification into an [`Identity`].

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

use crate::JwksCache;

/// Where verification keys come from. Resolved by the binary from env vars and files.
#[derive(Clone)]
pub enum KeyMaterial {
    /// A shared secret for HS256/384/512.
    Secret(Vec<u8>),
    /// A PEM-encoded RSA public key for RS256.
    RsaPem(Vec<u8>),
    /// A PEM-encoded EC public key for ES256.
    EcPem(Vec<u8>),
    /// A JWKS URL; keys are fetched, cached and refetched on rotation.
    Jwks(String),
    /// A JWKS cache built by the caller, e.g. with its own refresh intervals.
    JwksCache(std::sync::Arc<JwksCache>),
}

impl KeyMaterial {
    /// A PEM public key, RSA or EC, told apart by parsing it.
    pub fn public_pem(pem: Vec<u8>) -> Self {
        if DecodingKey::from_ec_pem(&pem).is_ok() && DecodingKey::from_rsa_pem(&pem).is_err() {
            Self::EcPem(pem)
        } else {
            Self::RsaPem(pem)
        }
    }
}

/// Which claims hold what. Defaults: `sub`, `email`, `groups`, `channels`, `device`.
#[derive(Debug, Clone)]
pub struct ClaimNames {
    /// The user id claim.
    pub user_id: String,
    /// The email claim.
    pub email: String,
    /// The claim listing the user's groups (`group:{id}` subscriptions).
    pub groups: String,
    /// The claim listing channels (or `ns:*` patterns) the `claim` policy allows.
    pub channels: String,
    /// The claim naming the device, for per-device positions.
    pub device: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            user_id: "sub".into(),
            email: "email".into(),
            groups: "groups".into(),
            channels: "channels".into(),
            device: "device".into(),
        }
    }
}

/// Everything a [`Verifier`] needs.
#[derive(Clone)]
pub struct JwtSettings {
    /// Accepted algorithms; a token signed otherwise is refused.
    pub algorithms: Vec<Algorithm>,
    /// Keys to verify with.
    pub keys: Vec<KeyMaterial>,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Accepted `aud` values, when any are set.
    pub audience: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// Claim names.
    pub claims: ClaimNames,
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user id claim.
    pub user_id: String,
    /// The email claim, when present.
    pub email: Option<String>,
    /// Groups from the groups claim.
    pub groups: Vec<String>,
    /// Channels (or `ns:*` patterns) from the channels claim.
    pub channels: Vec<String>,
    /// The device claim, when present.
    pub device: Option<String>,
    /// `exp`, Unix seconds, when present.
    pub expires_at: Option<u64>,
}

/// Why a token was refused. The `Display` text is the close reason a person reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token was presented.
    #[error("no token: send it as Authorization: Bearer, ?token=, the cookie, or an auth frame")]
    Missing,
    /// Not three base64url parts, or bad JSON inside.
    #[error("token is not a well-formed JWT")]
    Malformed,
    /// The signature does not match any key.
    #[error("token signature does not verify")]
    BadSignature,
    /// `exp` is in the past.
    #[error("token expired; get a new one and reconnect")]
    Expired,
    /// `nbf` is in the future.
    #[error("token is not valid yet (nbf)")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("token issuer is not accepted")]
    WrongIssuer,
    /// `aud` is not a configured audience.
    #[error("token audience is not accepted")]
    WrongAudience,
    /// The header's `alg` is not in the manifest's list, or no key of its kind exists.
    #[error("token algorithm is not accepted")]
    WrongAlgorithm,
    /// A required claim is missing or not a string.
    #[error("token has no usable `{0}` claim")]
    MissingClaim(String),
    /// A configured key could not be parsed.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The JWKS URL could not be fetched or parsed.
    #[error("could not load signing keys: {0}")]
    Jwks(String),
}

impl From<jsonwebtoken::errors::Error> for AuthError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        match e.kind() {
            ErrorKind::InvalidSignature => Self::BadSignature,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer => Self::WrongIssuer,
            ErrorKind::InvalidAudience => Self::WrongAudience,
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => Self::WrongAlgorithm,
            ErrorKind::MissingRequiredClaim(claim) => Self::MissingClaim(claim.clone()),
            ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidKeyFormat => {
                Self::InvalidKey(e.to_string())
            }
            _ => Self::Malformed,
        }
    }
}

/// Verifies tokens for one app.
pub struct Verifier {
    keys: Vec<DecodingKey>,
    jwks: Option<std::sync::Arc<JwksCache>>,
    /// One validation per accepted algorithm, listing that algorithm alone: jsonwebtoken
    /// refuses a key as soon as any listed algorithm is of another family, so one validation
    /// for a mixed list (`["RS256", "HS256"]`) would refuse every token.
    validations: Vec<(Algorithm, Validation)>,
    leeway_secs: u64,
    claims: ClaimNames,
}

impl Verifier {
    /// Parses the key material; fails on a bad PEM so that startup, not the first user, sees it.
    pub fn new(settings: JwtSettings) -> Result<Self, AuthError> {
        let validations = settings.algorithms.iter().map(|&alg| (alg, validation(alg, &settings))).collect();
        let mut keys = Vec::new();
        let mut jwks = None;
        for material in settings.keys {
            match material {
                KeyMaterial::Secret(secret) => keys.push(DecodingKey::from_secret(&secret)),
                KeyMaterial::RsaPem(pem) => keys.push(DecodingKey::from_rsa_pem(&pem)?),
                KeyMaterial::EcPem(pem) => keys.push(DecodingKey::from_ec_pem(&pem)?),
                KeyMaterial::Jwks(url) => jwks = Some(std::sync::Arc::new(JwksCache::new(url))),
                KeyMaterial::JwksCache(cache) => jwks = Some(cache),
            }
        }
        Ok(Self { keys, jwks, validations, leeway_secs: settings.leeway_secs, claims: settings.claims })
    }

    /// Seconds of clock skew tolerated on `exp` and `nbf`.
    pub fn leeway_secs(&self) -> u64 {
        self.leeway_secs
    }

    /// Checks a token's signature, time and issuer/audience, and reads its claims.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let validation = self.validation_for(header.alg).ok_or(AuthError::WrongAlgorithm)?;
        let family = header.alg.family();
        // A JWKS holds public keys: an HS token is never checked against one, whatever its `kid`.
        let jwks = self.jwks.as_ref().filter(|_| family != AlgorithmFamily::Hmac);
        if let (Some(jwks), Some(kid)) = (jwks, header.kid.as_deref()) {
            let key = jwks.key(kid).await?;
            if key.family() != family {
                return Err(AuthError::WrongAlgorithm);
            }
            return self.decode(token, &key, validation);
        }
        let mut last = AuthError::WrongAlgorithm;
        for key in self.keys.iter().filter(|k| k.family() == family) {
            match self.decode(token, key, validation) {
                Err(AuthError::BadSignature) => last = AuthError::BadSignature,
                other => return other,
            }
        }
        Err(last)
    }

    /// The validation for tokens signed with `alg`, if the app accepts it.
    fn validation_for(&self, alg: Algorithm) -> Option<&Validation> {
        self.validations.iter().find(|(a, _)| *a == alg).map(|(_, v)| v)
    }

    fn decode(&self, token: &str, key: &DecodingKey, validation: &Validation) -> Result<Identity, AuthError> {
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, validation)?;
        self.identity(&data.claims)
    }

    fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, AuthError> {
        let names = &self.claims;
        let user_id = match claims.get(&names.user_id) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(AuthError::MissingClaim(names.user_id.clone())),
        };
        Ok(Identity {
            user_id,
            email: claims.get(&names.email).and_then(Value::as_str).map(str::to_owned),
            groups: string_list(claims.get(&names.groups)),
            channels: string_list(claims.get(&names.channels)),
            device: claims.get(&names.device).and_then(Value::as_str).map(str::to_owned),
            expires_at: claims.get("exp").and_then(Value::as_u64),
        })
    }
}

/// What a token signed with `alg` must satisfy: `alg` itself, the times, issuer and audience.
fn validation(alg: Algorithm, settings: &JwtSettings) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = settings.leeway_secs;
    validation.validate_nbf = true;
    // Tokens without `exp` never expire, as in Centrifugo; minted tokens always carry one.
    validation.required_spec_claims.clear();
    if let Some(issuer) = &settings.issuer {
        validation.set_issuer(&[issuer]);
    }
    if settings.audience.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&settings.audience);
    }
    validation
}

/// A claim that is a list of strings (or numbers), or one string.
fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Signs `claims` with a secret (HS*) or a PEM private key (RS256/ES256).
pub fn mint(alg: Algorithm, key: &[u8], claims: &Map<String, Value>) -> Result<String, AuthError> {
    mint_with_kid(alg, key, None, claims)
}

/// Like [`mint`], naming the signing key's `kid` in the header (for JWKS issuers).
pub fn mint_with_kid(
    alg: Algorithm,
    key: &[u8],
    kid: Option<&str>,
    claims: &Map<String, Value>,
) -> Result<String, AuthError> {
    let key = match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => EncodingKey::from_secret(key),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(key)?,
        _ => EncodingKey::from_rsa_pem(key)?,
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    Ok(jsonwebtoken::encode(&header, claims, &key)?)
}

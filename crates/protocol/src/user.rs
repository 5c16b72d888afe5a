//! User ids: what may follow `user:` in a channel name. Every place that takes a user id from
//! outside checks it here, so an id one route accepts is never one another refuses.

use std::fmt;

use crate::channel::MAX_CHANNEL_LEN;

/// The namespace of a user's own channel.
const PREFIX: &str = "user:";

/// Longest user id accepted, in bytes: the longest that still makes a valid `user:{id}` channel.
pub const MAX_USER_ID_LEN: usize = MAX_CHANNEL_LEN - PREFIX.len();

/// Why a user id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserIdError {
    /// The id was empty.
    Empty,
    /// The id was longer than [`MAX_USER_ID_LEN`].
    TooLong,
    /// The id held whitespace or a control character (a NUL, a newline).
    BadCharacter,
}

impl fmt::Display for UserIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("user id is empty"),
            Self::TooLong => write!(f, "user id is longer than {MAX_USER_ID_LEN} bytes"),
            Self::BadCharacter => f.write_str("user id holds whitespace or a control character"),
        }
    }
}

impl std::error::Error for UserIdError {}

/// Checks a user id: 1 to [`MAX_USER_ID_LEN`] bytes, without whitespace or control characters.
/// Exactly the ids whose `user:{id}` channel is a valid channel name.
pub fn check_user_id(id: &str) -> Result<(), UserIdError> {
    if id.is_empty() {
        return Err(UserIdError::Empty);
    }
    if id.len() > MAX_USER_ID_LEN {
        return Err(UserIdError::TooLong);
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UserIdError::BadCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{user_channel, Channel};

    #[test]
    fn accepts_exactly_the_ids_that_make_a_valid_user_channel() {
        let long = "u".repeat(MAX_USER_ID_LEN);
        let too_long = "u".repeat(MAX_USER_ID_LEN + 1);
        let ids =
            ["alice", "a:b", "auth0|42", "ü", &long, &too_long, "", "a b", "a\0b", "a\nb", "a\u{85}b", "\u{3000}"];
        for id in ids {
            let channel = user_channel(id);
            assert_eq!(check_user_id(id).is_ok(), Channel::parse(&channel).is_ok(), "{id:?}");
        }
        assert_eq!(check_user_id(&too_long), Err(UserIdError::TooLong));
        assert_eq!(check_user_id("a\0b"), Err(UserIdError::BadCharacter));
        assert_eq!(check_user_id(""), Err(UserIdError::Empty));
        assert_eq!(UserIdError::TooLong.to_string(), "user id is longer than 250 bytes");
    }
}

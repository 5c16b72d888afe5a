//! Channel names: `kind:id` with a few reserved kinds.

use std::fmt;

/// Longest channel name accepted anywhere, in bytes.
pub const MAX_CHANNEL_LEN: usize = 255;

/// A parsed channel name. Borrowed from the name it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel<'a> {
    /// `user:{id}`: every connection of one user.
    User(&'a str),
    /// `group:{id}`: accounts, families; from the token's groups claim or the members API.
    Group(&'a str),
    /// `room:{id}`: joined by clients when the manifest allows, or added by the server.
    Room(&'a str),
    /// `broadcast`: every connection of the app.
    Broadcast,
    /// `ns:rest`: a namespace the manifest declares.
    Custom {
        /// The namespace, the part before the first `:`.
        namespace: &'a str,
        /// Everything after the first `:`.
        rest: &'a str,
    },
}

/// Why a channel name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelError {
    /// The name was empty.
    Empty,
    /// The name was longer than [`MAX_CHANNEL_LEN`].
    TooLong,
    /// The name held whitespace or a control character.
    BadCharacter,
    /// The name had no `:` and is not `broadcast`.
    NoNamespace,
    /// The part after `kind:` was empty.
    EmptyId,
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "channel name is empty",
            Self::TooLong => "channel name is longer than 255 bytes",
            Self::BadCharacter => "channel name holds whitespace or a control character",
            Self::NoNamespace => "channel name needs a namespace, like user:42, group:g1, room:r1 or ns:name",
            Self::EmptyId => "channel name has nothing after its namespace",
        })
    }
}

impl std::error::Error for ChannelError {}

impl<'a> Channel<'a> {
    /// Parses a channel name, checking its length and characters.
    pub fn parse(name: &'a str) -> Result<Self, ChannelError> {
        if name.is_empty() {
            return Err(ChannelError::Empty);
        }
        if name.len() > MAX_CHANNEL_LEN {
            return Err(ChannelError::TooLong);
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ChannelError::BadCharacter);
        }
        if name == "broadcast" {
            return Ok(Self::Broadcast);
        }
        let (namespace, rest) = name.split_once(':').ok_or(ChannelError::NoNamespace)?;
        if rest.is_empty() || namespace.is_empty() {
            return Err(ChannelError::EmptyId);
        }
        Ok(match namespace {
            "user" => Self::User(rest),
            "group" => Self::Group(rest),
            "room" => Self::Room(rest),
            _ => Self::Custom { namespace, rest },
        })
    }

    /// The namespace this channel's policy is looked up under.
    pub fn namespace(&self) -> &'a str {
        match self {
            Self::User(_) => "user",
            Self::Group(_) => "group",
            Self::Room(_) => "room",
            Self::Broadcast => "broadcast",
            Self::Custom { namespace, .. } => namespace,
        }
    }
}

/// The channel of one user's devices.
pub fn user_channel(user: &str) -> String {
    format!("user:{user}")
}

/// The channel of one group.
pub fn group_channel(group: &str) -> String {
    format!("group:{group}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reserved_and_custom_kinds() {
        assert_eq!(Channel::parse("user:42"), Ok(Channel::User("42")));
        assert_eq!(Channel::parse("group:a:b"), Ok(Channel::Group("a:b")));
        assert_eq!(Channel::parse("room:lobby"), Ok(Channel::Room("lobby")));
        assert_eq!(Channel::parse("broadcast"), Ok(Channel::Broadcast));
        assert_eq!(Channel::parse("stream:pond:42"), Ok(Channel::Custom { namespace: "stream", rest: "pond:42" }));
    }

    #[test]
    fn refuses_bad_names() {
        assert_eq!(Channel::parse(""), Err(ChannelError::Empty));
        assert_eq!(Channel::parse("lobby"), Err(ChannelError::NoNamespace));
        assert_eq!(Channel::parse("user:"), Err(ChannelError::EmptyId));
        assert_eq!(Channel::parse(":x"), Err(ChannelError::EmptyId));
        assert_eq!(Channel::parse("room:a b"), Err(ChannelError::BadCharacter));
        assert_eq!(Channel::parse(&"x".repeat(300)), Err(ChannelError::TooLong));
    }
}

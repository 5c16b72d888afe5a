//! Keeps tokens out of logs.

/// Query parameters whose values are secrets.
const SECRET_PARAMS: [&str; 4] = ["token", "access_token", "auth", "key"];

/// A URI path and query with secret query values replaced by `[redacted]`.
pub fn uri(path_and_query: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if SECRET_PARAMS.contains(&name) => format!("{name}=[redacted]"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hides_token_values_only() {
        assert_eq!(super::uri("/ws?device=a&token=abc.def"), "/ws?device=a&token=[redacted]");
        assert_eq!(super::uri("/ws"), "/ws");
    }
}

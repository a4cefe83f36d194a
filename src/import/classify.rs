//! Judging what was read: whether a value looks secret, which environment type a name means,
//! and the names tether gives what it imports.

use crate::manifest::EnvironmentType;

/// Key fragments of values that are secrets.
const SECRET_MARKS: [&str; 14] = [
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "TOKEN",
    "PRIVATE",
    "CREDENTIAL",
    "API_KEY",
    "APIKEY",
    "ACCESS_KEY",
    "SIGNING",
    "DSN",
    "DATABASE_URL",
    "CONNECTION_STRING",
    "REDIS_URL",
];

/// Prefixes of values bundled into what browsers download: public by design.
const PUBLIC_PREFIXES: [&str; 5] = [
    "NEXT_PUBLIC_",
    "PUBLIC_",
    "VITE_",
    "REACT_APP_",
    "EXPO_PUBLIC_",
];

/// Whether a plainly stored value should still be a secret: by its key (`*_SECRET`, `*TOKEN*`,
/// `*_KEY`, `DATABASE_URL`, …, but not browser-public names or publishable keys), or by its
/// value (a URL carrying a password). A Railway reference (`${{shared.X}}`) is not a secret:
/// it names one.
pub fn looks_secret(key: &str, value: &str) -> bool {
    if value.contains("${{") {
        return false;
    }
    let k = key.to_ascii_uppercase();
    if PUBLIC_PREFIXES.iter().any(|p| k.starts_with(p)) || k.contains("PUBLISHABLE") {
        return false;
    }
    if SECRET_MARKS.iter().any(|m| k.contains(m)) || k.ends_with("_KEY") || k == "KEY" {
        return true;
    }
    url_with_password(value)
}

/// `scheme://user:password@host…`.
fn url_with_password(v: &str) -> bool {
    let Some((_, rest)) = v.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(user, _)| user.contains(':'))
}

/// The environment type a platform's environment, target or branch name means, if any.
pub fn guess_type(name: &str) -> Option<EnvironmentType> {
    let lower = name.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    if has(&["production", "prod", "prd", "live", "main", "master"]) {
        Some(EnvironmentType::Production)
    } else if has(&["staging", "stage", "stg", "preview", "uat", "qa"]) {
        Some(EnvironmentType::Staging)
    } else if has(&["development", "develop", "dev", "local", "test", "sandbox"]) {
        Some(EnvironmentType::Development)
    } else {
        None
    }
}

/// The prefix environment names carry: prod, staging, dev.
pub fn short_type(t: EnvironmentType) -> &'static str {
    match t {
        EnvironmentType::Production => "prod",
        EnvironmentType::Staging => "staging",
        EnvironmentType::Development => "dev",
    }
}

/// A name tether accepts: lowercase letters, digits and `-`.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() { "app".into() } else { out }
}

/// A name without the words that name its environment type (`vocilia-prod` → `vocilia`).
pub fn without_type_words(name: &str) -> String {
    let kept: Vec<String> = slug(name)
        .split('-')
        .filter(|w| guess_type(w).is_none())
        .map(String::from)
        .collect();
    kept.join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_by_key_and_by_value() {
        for k in [
            "STRIPE_SECRET_KEY",
            "JWT_SECRET",
            "GITHUB_TOKEN",
            "DATABASE_URL",
            "SENTRY_DSN",
            "OPENAI_API_KEY",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            assert!(looks_secret(k, "x"), "{k}");
        }
        for k in [
            "NEXT_PUBLIC_SUPABASE_ANON_KEY",
            "STRIPE_PUBLISHABLE_KEY",
            "LOG_LEVEL",
            "PORT",
            "KEYBOARD_LAYOUT",
        ] {
            assert!(!looks_secret(k, "x"), "{k}");
        }
        assert!(looks_secret("UPSTREAM", "postgres://app:hunter2@db:5432/x"));
        assert!(!looks_secret("UPSTREAM", "https://user@example.com/x"));
        assert!(!looks_secret("DATABASE_URL", "${{Postgres.DATABASE_URL}}"));
    }

    #[test]
    fn types_from_names() {
        use EnvironmentType::*;
        assert_eq!(guess_type("production"), Some(Production));
        assert_eq!(guess_type("vocilia-prod"), Some(Production));
        assert_eq!(guess_type("Staging"), Some(Staging));
        assert_eq!(guess_type("preview"), Some(Staging));
        assert_eq!(guess_type("develop"), Some(Development));
        assert_eq!(guess_type("feature-x"), None);
        assert_eq!(without_type_words("vocilia-prod"), "vocilia");
        assert_eq!(slug("My App_2"), "my-app-2");
    }
}

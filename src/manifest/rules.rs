//! Single-value rules: names, hostnames, variable keys per platform, commits, labels.

use super::kinds::Platform;

/// Vercel's system and reserved variable names (besides the `VERCEL_` and `NOW_` prefixes).
pub const VERCEL_RESERVED: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_REGION",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_RUNTIME_DIR",
    "LAMBDA_TASK_ROOT",
    "TZ",
    "_HANDLER",
];

/// Checks a variable name against the POSIX rule and the platform's reserved names.
pub fn variable_name(name: &str, platform: Option<Platform>) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("variable names must match [A-Za-z_][A-Za-z0-9_]*".into());
    }
    if name.len() > 256 {
        return Err("variable names are at most 256 characters".into());
    }
    match platform {
        Some(Platform::Railway) if name.starts_with("RAILWAY_") => {
            Err("names starting with RAILWAY_ are reserved by Railway".into())
        }
        Some(Platform::Supabase) if name.to_ascii_uppercase().starts_with("SUPABASE_") => {
            Err("names starting with SUPABASE_ are reserved by Supabase".into())
        }
        Some(Platform::Vercel) if name.starts_with("VERCEL_") || name.starts_with("NOW_") => {
            Err("names starting with VERCEL_ or NOW_ are reserved by Vercel".into())
        }
        Some(Platform::Vercel) if VERCEL_RESERVED.contains(&name) => {
            Err(format!("{name} is a system variable reserved by Vercel"))
        }
        _ => Ok(()),
    }
}

/// A resource name: 1 to 253 characters of lowercase letters, digits, `-` and `.`, starting and
/// ending with a letter or digit (a Kubernetes DNS subdomain name).
pub fn resource_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err("names are lowercase letters, digits, '-' and '.', starting and ending with a letter or digit".into())
    }
}

/// A fully qualified hostname: at least two labels of 1 to 63 letters, digits and `-`
/// (not at either end), 253 characters at most. Lowercase only.
pub fn hostname(name: &str) -> Result<(), String> {
    let bad = || Err(format!("{name:?} is not a valid hostname"));
    if name.is_empty() || name.len() > 253 || name.ends_with('.') {
        return bad();
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("{name:?}: write hostnames in lowercase"));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err(format!("{name:?} is not a fully qualified hostname"));
    }
    for l in labels {
        let ok = !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-');
        if !ok {
            return bad();
        }
    }
    Ok(())
}

/// A Supabase project ref: exactly 20 lowercase letters.
pub fn supabase_ref(r: &str) -> Result<(), String> {
    if r.len() == 20 && r.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(())
    } else {
        Err(format!(
            "{r:?} is not a Supabase project ref (20 lowercase letters)"
        ))
    }
}

/// A git commit: 7 to 40 hexadecimal characters.
pub fn commit(c: &str) -> Result<(), String> {
    if (7..=40).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!(
            "{c:?} is not a commit sha (7 to 40 hexadecimal characters)"
        ))
    }
}

/// A git branch name, by git's own rules (the common ones).
pub fn branch(b: &str) -> Result<(), String> {
    let bad = b.is_empty()
        || b.starts_with('-')
        || b.starts_with('/')
        || b.ends_with('/')
        || b.ends_with(".lock")
        || b.ends_with('.')
        || b.contains("..")
        || b.contains("@{")
        || b.contains("//")
        || b.chars()
            .any(|c| c.is_ascii_control() || " ~^:?*[\\".contains(c));
    if bad {
        Err(format!("{b:?} is not a valid git branch name"))
    } else {
        Ok(())
    }
}

/// A label key (`[prefix/]name`) as Kubernetes spells it.
pub fn label_key(k: &str) -> Result<(), String> {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix
        && (p.is_empty() || resource_name(p).is_err())
    {
        return Err(format!("label key {k:?} has an invalid prefix"));
    }
    label_value(name)
        .and_then(|_| if name.is_empty() { Err(String::new()) } else { Ok(()) })
        .map_err(|_| format!("label key {k:?}: names are 1-63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"))
}

/// A label value: at most 63 letters, digits, `-`, `_`, `.`, alphanumeric at both ends.
pub fn label_value(v: &str) -> Result<(), String> {
    let ok = v.is_empty()
        || (v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "label value {v:?}: at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names() {
        assert!(variable_name("API_KEY", None).is_ok());
        assert!(variable_name("_X1", None).is_ok());
        assert!(variable_name("1API_KEY", None).is_err());
        assert!(variable_name("API-KEY", None).is_err());
        assert!(variable_name("", None).is_err());
        assert!(variable_name(&"A".repeat(257), None).is_err());
        assert!(variable_name("RAILWAY_TOKEN", Some(Platform::Railway)).is_err());
        assert!(variable_name("RAILWAY_TOKEN", Some(Platform::Vercel)).is_ok());
        assert!(variable_name("SUPABASE_URL", Some(Platform::Supabase)).is_err());
        assert!(variable_name("supabase_url", Some(Platform::Supabase)).is_err());
        assert!(variable_name("VERCEL_URL", Some(Platform::Vercel)).is_err());
        assert!(variable_name("NOW_REGION", Some(Platform::Vercel)).is_err());
        assert!(variable_name("AWS_REGION", Some(Platform::Vercel)).is_err());
        assert!(variable_name("AWS_REGION", Some(Platform::Railway)).is_ok());
    }

    #[test]
    fn hostnames() {
        assert!(hostname("api.vocilia.com").is_ok());
        assert!(hostname("staging-api.vocilia.com").is_ok());
        for bad in [
            "localhost",
            "-a.com",
            "a-.com",
            "a..com",
            "a_b.com",
            "API.vocilia.com",
            "a.com.",
            "",
        ] {
            assert!(hostname(bad).is_err(), "{bad}");
        }
        assert!(hostname(&format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn names_refs_commits_branches_labels() {
        assert!(resource_name("prod-backend").is_ok());
        assert!(resource_name("Prod").is_err() && resource_name("-a").is_err());
        assert!(supabase_ref("abcdefghijklmnopqrst").is_ok());
        assert!(supabase_ref("abcdefghijklmnopqrs1").is_err() && supabase_ref("abc").is_err());
        assert!(
            commit("1a2b3c4").is_ok() && commit("1a2b3c").is_err() && commit("zzzzzzz").is_err()
        );
        assert!(branch("main").is_ok() && branch("feature/x").is_ok());
        assert!(branch("a..b").is_err() && branch("a b").is_err() && branch("").is_err());
        assert!(label_key("app").is_ok() && label_key("tether.dev/shard").is_ok());
        assert!(label_key("").is_err() && label_key("-a").is_err());
        assert!(label_value("").is_ok() && label_value("a b").is_err());
    }
}

//! The request and answer types of the platform handlers, and each platform's error shapes.

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{SimPlatform, Timings};

/// What a handler needs besides the state: the time and the configured timings.
pub(crate) struct Ctx {
    pub now: DateTime<Utc>,
    pub timings: Timings,
}

/// An API request with the platform prefix removed.
pub(crate) struct ApiRequest {
    pub method: Method,
    /// The API's own path (`/v9/projects/prj_1`).
    pub path: String,
    /// The path split on `/`, percent-decoded, without empty segments.
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    /// The body parsed as JSON; None when empty.
    pub body: Option<Value>,
    /// The body was present but is not JSON.
    pub bad_body: bool,
}

impl ApiRequest {
    /// The first value of a query parameter.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The segments as `&str`, for matching.
    pub fn segs(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }
}

/// An answer's body.
pub(crate) enum ReplyBody {
    Json(Value),
    Empty,
    Html(&'static str),
}

/// An answer: status, body and extra headers.
pub(crate) struct Reply {
    pub status: u16,
    pub body: ReplyBody,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, v: Value) -> Reply {
        Reply {
            status,
            body: ReplyBody::Json(v),
            headers: Vec::new(),
        }
    }

    pub fn ok(v: Value) -> Reply {
        Reply::json(200, v)
    }

    /// No body and no content type.
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            body: ReplyBody::Empty,
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = match self.body {
            ReplyBody::Json(v) => (status, axum::Json(v)).into_response(),
            ReplyBody::Empty => (status, Body::empty()).into_response(),
            ReplyBody::Html(h) => (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                h,
            )
                .into_response(),
        };
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }
}

/// Railway's GraphQL error answer (HTTP 200 unless `status` says otherwise).
pub(crate) fn railway_error(status: u16, message: &str, code: Option<&str>) -> Reply {
    let mut err = json!({ "message": message });
    if let Some(c) = code {
        err["extensions"] = json!({ "code": c });
    }
    Reply::json(status, json!({ "data": null, "errors": [err] }))
}

/// Vercel's `{"error": {"code", "message"}}`.
pub(crate) fn vercel_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({ "error": { "code": code, "message": message } }),
    )
}

/// Supabase's `{"message"}`.
pub(crate) fn supabase_error(status: u16, message: &str) -> Reply {
    Reply::json(status, json!({ "message": message }))
}

/// The answer to a request without the right token.
pub(crate) fn unauthorized(p: SimPlatform) -> Reply {
    match p {
        SimPlatform::Railway => railway_error(200, "Not Authorized", Some("UNAUTHENTICATED")),
        SimPlatform::Vercel => vercel_error(403, "forbidden", "Not authorized"),
        SimPlatform::Supabase => supabase_error(401, "Unauthorized"),
    }
}

/// The answer to a path the platform does not serve.
pub(crate) fn not_found(p: SimPlatform, path: &str) -> Reply {
    let msg = format!("Cannot serve {path}");
    match p {
        SimPlatform::Railway => railway_error(404, "Not Found", None),
        SimPlatform::Vercel => vercel_error(404, "not_found", &msg),
        SimPlatform::Supabase => supabase_error(404, &msg),
    }
}

/// A 500 in the platform's error shape.
pub(crate) fn internal_error(p: SimPlatform) -> Reply {
    match p {
        SimPlatform::Railway => {
            railway_error(500, "Internal server error", Some("INTERNAL_SERVER_ERROR"))
        }
        SimPlatform::Vercel => vercel_error(
            500,
            "internal_server_error",
            "An unexpected internal error occurred",
        ),
        SimPlatform::Supabase => supabase_error(500, "Internal Server Error"),
    }
}

/// A 500 whose message quotes the request, as some platforms' errors echo what was sent.
pub(crate) fn internal_error_quoting(p: SimPlatform, body: &str) -> Reply {
    let msg = format!("An unexpected internal error occurred while processing {body}");
    match p {
        SimPlatform::Railway => railway_error(500, &msg, Some("INTERNAL_SERVER_ERROR")),
        SimPlatform::Vercel => vercel_error(500, "internal_server_error", &msg),
        SimPlatform::Supabase => supabase_error(500, &msg),
    }
}

/// A 429 in the platform's shape; `reset` is the epoch second the window ends, `limit` the
/// window's size (0 when the 429 is an injected fault).
pub(crate) fn rate_limited(p: SimPlatform, reset: i64, limit: u32) -> Reply {
    match p {
        SimPlatform::Railway => railway_error(
            429,
            "Rate limit exceeded. Please try again later.",
            Some("RATELIMITED"),
        ),
        SimPlatform::Vercel => Reply::json(
            429,
            json!({ "error": {
                "code": "rate_limited",
                "message": "Rate limit exceeded",
                "limit": { "remaining": 0, "reset": reset, "resetMs": reset * 1000, "total": limit },
            }}),
        ),
        SimPlatform::Supabase => supabase_error(429, "Too many requests"),
    }
}

/// A 400 for a body that is missing or not JSON, in the platform's shape.
pub(crate) fn bad_body(p: SimPlatform, what: &str) -> Reply {
    match p {
        SimPlatform::Railway => railway_error(400, what, Some("BAD_REQUEST")),
        SimPlatform::Vercel => vercel_error(400, "bad_request", what),
        SimPlatform::Supabase => supabase_error(400, what),
    }
}

/// Decodes `%XX` escapes (and leaves anything malformed as it is).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn decodes_escapes() {
        assert_eq!(percent_decode("a%2Eb%20c"), "a.b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%41"), "A");
    }
}

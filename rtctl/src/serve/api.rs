//! What `rtctl serve` answers: the page, and JSON endpoints that do what the command line
//! does (`/api/telemetry` is one `rtctl watch --json` sample, `/api/set` takes the same
//! `NAME=VALUE` assignments with the same range checks as `rtctl set`, `/api/params` is
//! `rtctl params` and `rtctl get` together). Host-testable on an in-memory channel:
//! nothing here maps memory, takes the writer lock or touches a socket.

use channel::params::{read_published, Publisher};
use channel::schema::{Schema, Shown};
use channel::Channel;
use serde_json::{json, Value};

use super::http::{form_decode, Request, Response, HTML, JSON};
use crate::report;

/// The HMI page: one static file, its script inline.
pub const PAGE: &str = include_str!("page.html");

/// The channel as this request finds it.
pub enum Link<'a> {
    Up(&'a Channel<'a>),
    /// Not mapped, or its header unusable: why.
    Down(String),
}

/// The paths served and the methods each takes.
const ROUTES: &[(&str, &str)] = &[
    ("/", "GET, HEAD"),
    ("/index.html", "GET, HEAD"),
    ("/api/telemetry", "GET, HEAD"),
    ("/api/params", "GET, HEAD"),
    ("/api/set", "POST"),
];

fn json_response(status: u16, value: &Value) -> Response {
    let mut body = value.to_string();
    body.push('\n');
    Response::new(status, JSON, body)
}

fn error(status: u16, message: impl Into<String>) -> Response {
    json_response(status, &json!({ "ok": false, "error": message.into() }))
}

/// The answer to one request. `sample` numbers telemetry answers as `watch` numbers its
/// lines.
pub fn respond(req: &Request, link: Link<'_>, schema: &Schema, sample: u64) -> Response {
    let Some(&(path, allowed)) = ROUTES.iter().find(|(p, _)| *p == req.path) else {
        return error(404, format!("no such page: {}", req.path));
    };
    let method = if req.method == "HEAD" {
        "GET"
    } else {
        req.method.as_str()
    };
    if !allowed.split(", ").any(|m| m == req.method) {
        let mut r = error(
            405,
            format!("{} takes {allowed}, not {}", req.path, req.method),
        );
        r.allow = Some(allowed);
        return r;
    }
    if path == "/" || path == "/index.html" {
        return Response::new(200, HTML, PAGE);
    }
    let ch = match link {
        Link::Up(ch) => ch,
        Link::Down(why) => return error(503, why),
    };
    match (method, path) {
        ("GET", "/api/telemetry") => Response::new(
            200,
            JSON,
            report::watch_sample(ch, true, sample).into_bytes(),
        ),
        ("GET", "/api/params") => params(ch, schema),
        _ => set(ch, schema, &req.body),
    }
}

/// The schema with the published value of each parameter.
fn params(ch: &Channel, schema: &Schema) -> Response {
    let (version, snapshot, note) = match read_published(ch, schema) {
        Ok(Some(s)) => (json!(s.version), Some(s), Value::Null),
        Ok(None) => (
            Value::Null,
            None,
            json!("nothing published yet: the defaults"),
        ),
        Err(why) => (
            Value::Null,
            None,
            json!(format!("unusable: {}", why.describe())),
        ),
    };
    let list: Vec<Value> = schema
        .params
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let value = snapshot
                .as_ref()
                .and_then(|s| s.value(i))
                .unwrap_or(spec.default);
            let shown = |v: i64| Shown { spec, value: v }.to_string();
            json!({
                "name": spec.name,
                "unit": spec.unit,
                "decimals": spec.decimals,
                "min": shown(spec.min),
                "max": shown(spec.max),
                "default": shown(spec.default),
                "value": shown(value),
                "help": spec.help,
            })
        })
        .collect();
    json_response(
        200,
        &json!({ "schema": schema.name, "version": version, "note": note, "params": list }),
    )
}

/// `NAME=VALUE` assignments, form-encoded (`a=1&b=2`) or one a line.
fn assignments(body: &[u8]) -> Result<Vec<String>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
    let mut out = Vec::new();
    for part in text
        .split(['&', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let decoded = form_decode(part).ok_or_else(|| format!("`{part}`: bad %-encoding"))?;
        out.push(decoded);
    }
    if out.is_empty() {
        return Err("nothing to set: send NAME=VALUE".into());
    }
    Ok(out)
}

/// `rtctl set`, with the caller holding the writer lock.
fn set(ch: &Channel, schema: &Schema, body: &[u8]) -> Response {
    let list = match assignments(body) {
        Ok(list) => list,
        Err(why) => return error(400, why),
    };
    let changes = match report::parse_set(schema, &list) {
        Ok(c) => c,
        Err(why) => return error(422, why),
    };
    match report::set(ch, schema, &mut Publisher::new(), &changes, || {}) {
        Ok(message) => {
            let version = read_published(ch, schema).ok().flatten().map(|s| s.version);
            json_response(
                200,
                &json!({ "ok": true, "message": message.trim_end(), "version": version }),
            )
        }
        Err(why) => error(500, why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use channel::layout::Layout;
    use channel::schema::CONTROL;
    use channel::telemetry::{Telemetry, TelemetryWriter};
    use channel::{Region, Word};

    const WORDS: usize = 8192;

    fn with_channel(f: impl FnOnce(&Channel)) {
        let words: Vec<Word> = (0..WORDS).map(|_| Word::new(0)).collect();
        let ch = Channel::new(Region::new(&words), Layout::new(WORDS, 2).unwrap()).unwrap();
        ch.write_header();
        f(&ch);
    }

    fn req(method: &str, path: &str, body: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            query: None,
            body: body.as_bytes().to_vec(),
        }
    }

    fn body(r: &Response) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn the_page_and_unknown_paths_and_methods() {
        with_channel(|ch| {
            let r = respond(&req("GET", "/", ""), Link::Up(ch), &CONTROL, 0);
            assert_eq!((r.status, r.content_type), (200, HTML));
            assert!(r.body.starts_with(b"<!DOCTYPE html>"));
            let r = respond(&req("GET", "/nope", ""), Link::Up(ch), &CONTROL, 0);
            assert_eq!(r.status, 404);
            let r = respond(&req("GET", "/api/set", ""), Link::Up(ch), &CONTROL, 0);
            assert_eq!((r.status, r.allow), (405, Some("POST")));
            let r = respond(&req("DELETE", "/", ""), Link::Up(ch), &CONTROL, 0);
            assert_eq!((r.status, r.allow), (405, Some("GET, HEAD")));
        });
        // The page needs no channel; the API says why there is none.
        let r = respond(&req("GET", "/", ""), Link::Down("x".into()), &CONTROL, 0);
        assert_eq!(r.status, 200);
        let r = respond(
            &req("GET", "/api/telemetry", ""),
            Link::Down("no channel in the device tree".into()),
            &CONTROL,
            0,
        );
        assert_eq!(r.status, 503);
        assert_eq!(body(&r)["error"], "no channel in the device tree");
    }

    #[test]
    fn telemetry_is_a_watch_sample() {
        with_channel(|ch| {
            let mut w = TelemetryWriter::new(ch, 0).unwrap();
            w.publish(
                ch,
                &Telemetry {
                    periods: 7,
                    ..Telemetry::default()
                },
            );
            let r = respond(&req("GET", "/api/telemetry", ""), Link::Up(ch), &CONTROL, 4);
            assert_eq!(r.status, 200);
            assert_eq!(r.body, report::watch_sample(ch, true, 4).into_bytes());
            let v = body(&r);
            assert_eq!(v["sample"], 4);
            assert_eq!(v["cpus"][0]["periods"], 7);
        });
    }

    #[test]
    fn set_checks_like_rtctl_set_and_params_shows_the_result() {
        with_channel(|ch| {
            let p = body(&respond(
                &req("GET", "/api/params", ""),
                Link::Up(ch),
                &CONTROL,
                0,
            ));
            assert_eq!(p["version"], Value::Null);
            assert_eq!(p["params"][0]["name"], "setpoint");
            assert_eq!(p["params"][0]["value"], "1.000 rad/s");
            let r = respond(
                &req("POST", "/api/set", "setpoint=1.5&kp=2"),
                Link::Up(ch),
                &CONTROL,
                0,
            );
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            let v = body(&r);
            assert_eq!(v["version"], 1);
            assert_eq!(
                v["message"],
                "published version 1: setpoint = 1.500 rad/s kp = 2.000 V/(rad/s)"
            );
            let p = body(&respond(
                &req("GET", "/api/params", ""),
                Link::Up(ch),
                &CONTROL,
                0,
            ));
            assert_eq!(p["version"], 1);
            assert_eq!(p["params"][0]["value"], "1.500 rad/s");
            assert_eq!(p["params"][0]["min"], "-2.000 rad/s");
            // Refusals: the same words as `rtctl set`, nothing published.
            let r = respond(
                &req("POST", "/api/set", "setpoint=999"),
                Link::Up(ch),
                &CONTROL,
                0,
            );
            assert_eq!(r.status, 422);
            let why = body(&r)["error"].as_str().unwrap().to_string();
            assert_eq!(
                why,
                report::parse_set(&CONTROL, &["setpoint=999".into()]).unwrap_err()
            );
            for bad in ["", "%zz=1", "\u{0}"] {
                let r = respond(&req("POST", "/api/set", bad), Link::Up(ch), &CONTROL, 0);
                assert!(matches!(r.status, 400 | 422), "{bad:?}: {}", r.status);
            }
            let p = body(&respond(
                &req("GET", "/api/params", ""),
                Link::Up(ch),
                &CONTROL,
                0,
            ));
            assert_eq!(p["version"], 1, "refusals publish nothing");
            // One a line works too (what `curl --data-binary` of a file sends).
            let r = respond(
                &req("POST", "/api/set", "kd=0.5\nki=1\n"),
                Link::Up(ch),
                &CONTROL,
                0,
            );
            assert_eq!(body(&r)["version"], 2);
        });
    }
}

//! A readable, self-contained HTML page of a run (inline CSS, no scripts): per script its
//! result, then each action with its outcome and message, and for operations the request and
//! response (headers and the start of the body) in a collapsible block.

use std::fmt::Write as _;

use super::escape;
use crate::http::{Request, Response};
use crate::run::result::{ActionResult, ScriptResult};

/// Bodies are cut after this many bytes in the page.
const BODY_LIMIT: usize = 8 * 1024;

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}\
h3{font-size:1em;margin:1em 0 .3em}table{border-collapse:collapse;width:100%}\
td{border-bottom:1px solid #eee;padding:.3em .5em;vertical-align:top}\
.o{font-weight:bold;width:5em}.pass{color:#1a7f37}.fail,.error{color:#cf222e}\
.warning{color:#9a6700}.skip{color:#6e7781}pre{background:#f6f8fa;padding:.5em;\
overflow:auto;max-height:30em;white-space:pre-wrap;word-break:break-all}details{margin-top:.3em}";

/// The HTML page of a run.
pub(super) fn html(results: &[ScriptResult]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>fhirgate-conformance</title><style>{STYLE}</style></head><body>\n<h1>fhirgate-conformance: {}</h1>\n<p>{}</p>\n<ul>",
        escape(&super::summary::scripts(results)),
        escape(&super::summary::total(results))
    );
    for (i, result) in results.iter().enumerate() {
        let class = result.status().label().to_lowercase();
        let _ = write!(
            out,
            "<li><a href=\"#s{i}\">{}</a> ({}) <span class=\"{class}\">{}</span></li>",
            escape(&result.name),
            escape(&result.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()),
            class.to_uppercase()
        );
    }
    out.push_str("</ul>\n");
    for (i, result) in results.iter().enumerate() {
        script(&mut out, i, result);
    }
    out.push_str("</body></html>\n");
    out
}

fn script(out: &mut String, index: usize, result: &ScriptResult) {
    let class = result.status().label().to_lowercase();
    let _ = write!(
        out,
        "<h2 id=\"s{index}\">{} <span class=\"{class}\">{}</span></h2>\n<p>{} — against {} — {} ms</p>\n",
        escape(&result.name),
        class.to_uppercase(),
        escape(&result.path.display().to_string()),
        escape(&result.base_url),
        result.millis
    );
    if let Some(reason) = &result.skipped {
        let _ = writeln!(out, "<p class=\"skip\">Skipped: {}</p>", escape(reason));
    }
    if let Some(error) = &result.error {
        let _ = writeln!(out, "<p class=\"error\">Not run: {}</p>", escape(error));
    }
    section(out, "Setup", &result.setup);
    for test in &result.tests {
        let title = if test.description.is_empty() {
            test.name.clone()
        } else {
            format!("{} — {}", test.name, test.description)
        };
        section(out, &format!("Test {title}"), &test.actions);
    }
    section(out, "Teardown", &result.teardown);
}

fn section(out: &mut String, title: &str, actions: &[ActionResult]) {
    if actions.is_empty() {
        return;
    }
    let _ = write!(out, "<h3>{}</h3>\n<table>\n", escape(title));
    for action in actions {
        let outcome = action.outcome.code();
        let _ = write!(
            out,
            "<tr><td class=\"o {outcome}\">{}</td><td><b>{}</b><br>{}",
            outcome.to_uppercase(),
            escape(&action.label),
            escape(&action.message)
        );
        if let Some(exchange) = &action.exchange {
            let _ = write!(out, "<details><summary>request and response ({} ms)</summary>", exchange.millis);
            request(out, &exchange.request);
            match &exchange.response {
                Some(r) => response(out, r),
                None => out.push_str("<pre>no response</pre>"),
            }
            out.push_str("</details>");
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</table>\n");
}

fn request(out: &mut String, request: &Request) {
    let mut text = format!("{} {}\n", request.method, request.url);
    for (k, v) in &request.headers {
        let v = if k.eq_ignore_ascii_case("authorization") { "(hidden)" } else { v.as_str() };
        text.push_str(&format!("{k}: {v}\n"));
    }
    if let Some(body) = &request.body {
        text.push('\n');
        text.push_str(cut(&pretty(body)));
    }
    let _ = write!(out, "<pre>{}</pre>", escape(&text));
}

fn response(out: &mut String, response: &Response) {
    let mut text = format!("HTTP {}\n", response.status);
    for (k, v) in &response.headers {
        text.push_str(&format!("{k}: {v}\n"));
    }
    if !response.body.is_empty() {
        let body = pretty(&response.body);
        text.push('\n');
        text.push_str(cut(&body));
        if body.len() > BODY_LIMIT {
            text.push_str("\n… (cut)");
        }
    }
    let _ = write!(out, "<pre>{}</pre>", escape(&text));
}

/// A JSON body indented for reading; other bodies as they are.
fn pretty(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| body.to_owned())
}

/// The start of a body, cut at a character boundary.
fn cut(body: &str) -> &str {
    if body.len() <= BODY_LIMIT {
        return body;
    }
    let mut end = BODY_LIMIT;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    &body[..end]
}

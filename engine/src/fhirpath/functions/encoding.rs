//! String encoding functions of FHIRPath 2.0: `encode`/`decode` (`hex`, `base64`,
//! `urlbase64`) and `escape`/`unescape` (`html`, `json`).

use super::{Call, Output};
use crate::fhirpath::error::FhirPathError;
use crate::fhirpath::value::Item;

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub(super) fn call<'a>(c: &Call<'_, 'a, '_>) -> Option<Output<'a>> {
    if !matches!(c.name, "encode" | "decode" | "escape" | "unescape") {
        return None;
    }
    Some((|| {
        let text = match c.single()? {
            None => return Ok(Vec::new()),
            Some(Item::String(s)) => s,
            Some(_) => return Err(FhirPathError::eval(format!("`{}()` needs a string", c.name))),
        };
        let Some(format) = c.string_arg(0)? else { return Ok(Vec::new()) };
        let result = match (c.name, format.as_str()) {
            ("encode", "hex") => Some(text.bytes().map(|b| format!("{b:02x}")).collect()),
            ("encode", "base64") => Some(encode64(text.as_bytes(), BASE64)),
            ("encode", "urlbase64") => Some(encode64(text.as_bytes(), BASE64_URL)),
            ("decode", "hex") => decode_hex(&text),
            ("decode", "base64") => decode64(&text, BASE64),
            ("decode", "urlbase64") => decode64(&text, BASE64_URL),
            ("escape", "html") => {
                Some(text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;"))
            }
            ("escape", "json") => Some(text.replace('\\', "\\\\").replace('"', "\\\"")),
            ("unescape", "html") => {
                Some(text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&"))
            }
            ("unescape", "json") => Some(text.replace("\\\"", "\"").replace("\\\\", "\\")),
            _ => return Err(FhirPathError::eval(format!("`{}()` does not know the format `{format}`", c.name))),
        };
        Ok(result.map(Item::String).into_iter().collect())
    })())
}

fn encode64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0_u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn decode64(text: &str, alphabet: &[u8; 64]) -> Option<String> {
    let mut bits = 0_u32;
    let mut count = 0;
    let mut out = Vec::new();
    for b in text.bytes().filter(|b| *b != b'=') {
        let value = alphabet.iter().position(|a| *a == b)?;
        bits = bits << 6 | value as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count & 0xff) as u8);
        }
    }
    String::from_utf8(out).ok()
}

fn decode_hex(text: &str) -> Option<String> {
    if text.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
    String::from_utf8(bytes?).ok()
}

//! Progress on stderr while scripts run: on a terminal one bar redrawn in place
//! (`[=====>    ] 3/8 search.json`), elsewhere (CI logs) one plain line per finished script.

use std::io::Write;

use crate::report::summary;
use crate::run::Progress;

/// How wide the bar is, in characters.
const WIDTH: usize = 30;

/// Writes progress to `out`; `terminal` chooses the redrawn bar over plain lines.
pub struct Display<W: Write> {
    out: W,
    terminal: bool,
}

impl<W: Write> Display<W> {
    pub fn new(out: W, terminal: bool) -> Self {
        Self { out, terminal }
    }

    /// Shows one event. Write errors are ignored: progress must not stop a run.
    pub fn show(&mut self, event: Progress<'_>) {
        let _ = match (event, self.terminal) {
            (Progress::Started { index, total, path }, true) => {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                write!(self.out, "\r\x1b[2K{} {name}", bar(index, total))
            }
            (Progress::Started { .. }, false) => Ok(()),
            (Progress::Finished { index, total, .. }, true) if index + 1 == total => {
                write!(self.out, "\r\x1b[2K")
            }
            (Progress::Finished { .. }, true) => Ok(()),
            (Progress::Finished { index, total, result }, false) => {
                writeln!(self.out, "[{}/{total}] {}", index + 1, summary::line(result))
            }
        };
        let _ = self.out.flush();
    }
}

/// `[=====>        ] 3/8`, with `done` scripts finished.
fn bar(done: usize, total: usize) -> String {
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    let arrow = if filled < WIDTH { ">" } else { "" };
    format!("[{}{arrow}{}] {done}/{total}", "=".repeat(filled), " ".repeat(WIDTH.saturating_sub(filled + arrow.len())))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{Display, bar};
    use crate::run::Progress;
    use crate::run::result::ScriptResult;

    #[test]
    fn a_bar_on_a_terminal_and_lines_elsewhere() {
        let result = ScriptResult::skipped(Path::new("dir/a.json"), "http://server", "no `patch`".into());
        let events = |display: &mut Display<&mut Vec<u8>>| {
            display.show(Progress::Started { index: 0, total: 2, path: Path::new("dir/a.json") });
            display.show(Progress::Finished { index: 0, total: 2, result: &result });
            display.show(Progress::Started { index: 1, total: 2, path: Path::new("dir/b.json") });
            display.show(Progress::Finished { index: 1, total: 2, result: &result });
        };
        let mut plain = Vec::new();
        events(&mut Display::new(&mut plain, false));
        assert_eq!(
            String::from_utf8_lossy(&plain),
            "[1/2] SKIP  dir/a.json  a  — no `patch`\n[2/2] SKIP  dir/a.json  a  — no `patch`\n"
        );
        let mut terminal = Vec::new();
        events(&mut Display::new(&mut terminal, true));
        let text = String::from_utf8_lossy(&terminal);
        assert!(text.contains(&format!("{} a.json", bar(0, 2))) && text.contains(" 1/2 b.json"), "{text:?}");
        assert!(text.ends_with("\r\x1b[2K"), "the bar is cleared at the end: {text:?}");
        assert!(!text.contains('\n'), "the bar is redrawn in place");
    }

    #[test]
    fn the_bar_fills() {
        assert_eq!(bar(0, 2), format!("[>{}] 0/2", " ".repeat(29)));
        assert_eq!(bar(1, 2), format!("[{}>{}] 1/2", "=".repeat(15), " ".repeat(14)));
        assert_eq!(bar(2, 2), format!("[{}] 2/2", "=".repeat(30)));
    }
}

//! Output for people (aligned tables, state colours on a terminal) and for
//! scripts (`--json`).

use std::io::{IsTerminal, Write};

use serde::Serialize;

use crate::exit::CliError;

/// Where a command writes: stdout, as tables or JSON.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
    colour: bool,
}

impl Output {
    pub(crate) fn new(json: bool) -> Self {
        let colour = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Output { json, colour }
    }

    /// Prints `value` as pretty JSON.
    pub(crate) fn json<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| CliError::failure(format!("cannot write JSON: {e}")))?;
        self.line(&text);
        Ok(())
    }

    /// Prints one line.
    pub(crate) fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = writeln!(out, "{text}");
    }

    /// A state name, coloured on a terminal.
    pub(crate) fn state(&self, state: &str) -> String {
        if !self.colour {
            return state.to_owned();
        }
        let code = match state {
            "complete" | "resolved_manually" => "32",
            "error" => "31",
            "in_progress" => "33",
            "cancelled" => "90",
            _ => return state.to_owned(),
        };
        format!("\x1b[{code}m{state}\x1b[0m")
    }

    /// Prints a table: a header row and aligned columns.
    pub(crate) fn table(&self, header: &[&str], rows: &[Vec<String>]) {
        let columns = header.len();
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for row in rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(visible_len(cell));
            }
        }
        let render = |cells: &mut dyn Iterator<Item = &str>| {
            let mut line = String::new();
            for (i, cell) in cells.enumerate() {
                if i + 1 == columns {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(widths[i] - visible_len(cell) + 2));
                }
            }
            line.trim_end().to_owned()
        };
        let head: Vec<String> = header.iter().map(|h| h.to_uppercase()).collect();
        self.line(&render(&mut head.iter().map(String::as_str)));
        for row in rows {
            self.line(&render(&mut row.iter().map(String::as_str)));
        }
    }
}

/// Length without ANSI colour codes.
fn visible_len(text: &str) -> usize {
    let mut len = 0;
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => len += 1,
        }
    }
    len
}

#[cfg(test)]
mod tests {
    use super::visible_len;

    #[test]
    fn colour_codes_take_no_width() {
        assert_eq!(visible_len("\x1b[32mcomplete\x1b[0m"), 8);
        assert_eq!(visible_len("plain"), 5);
    }
}

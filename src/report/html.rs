//! A small builder of self-contained HTML pages: escaped text, headed
//! sections, tables and PNG pictures embedded as `data:` URIs, with the style
//! sheet inline. The page needs no network and no JavaScript to be read, so
//! it can be mailed or archived as one file.

use base64::Engine;
use std::fmt::Write;

/// A page under construction.
pub struct Page {
    body: String,
}

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #1f77b4; padding-bottom: .3em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f0f4f8; }
td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: .5em; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 13px; color: #555; text-align: center; }
.note { color: #666; font-style: italic; }
code { background: #f4f4f4; padding: 1px 4px; }
";

impl Page {
    pub fn new() -> Page {
        Page { body: String::new() }
    }

    pub fn heading(&mut self, level: u8, id: Option<&str>, text: &str) {
        let id = id.map_or(String::new(), |id| format!(" id=\"{}\"", escape(id)));
        let _ = writeln!(self.body, "<h{level}{id}>{}</h{level}>", escape(text));
    }

    pub fn paragraph(&mut self, text: &str) {
        let _ = writeln!(self.body, "<p>{}</p>", escape(text));
    }

    /// A paragraph in the muted style of a remark (what is missing and how to get it).
    pub fn note(&mut self, text: &str) {
        let _ = writeln!(self.body, "<p class=\"note\">{}</p>", escape(text));
    }

    /// A table with a header row; every cell is text.
    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) {
        self.body.push_str("<table>\n<tr>");
        for h in header {
            let _ = write!(self.body, "<th>{}</th>", escape(h));
        }
        self.body.push_str("</tr>\n");
        for row in rows {
            self.body.push_str("<tr>");
            for cell in row {
                let _ = write!(self.body, "<td>{}</td>", escape(cell));
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</table>\n");
    }

    /// A PNG embedded in the page, with its caption.
    pub fn picture(&mut self, caption: &str, png: &[u8]) {
        let data = base64::engine::general_purpose::STANDARD.encode(png);
        let caption = escape(caption);
        let _ = writeln!(self.body, "<figure><img alt=\"{caption}\" src=\"data:image/png;base64,{data}\"><figcaption>{caption}</figcaption></figure>");
    }

    pub fn open_section(&mut self, id: &str) {
        let _ = writeln!(self.body, "<section id=\"{}\">", escape(id));
    }

    pub fn close_section(&mut self) {
        self.body.push_str("</section>\n");
    }

    /// The whole document.
    pub fn finish(self, title: &str) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{}</body>\n</html>\n",
            escape(title),
            self.body
        )
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::new()
    }
}

/// `text` with HTML's five special characters escaped (safe in text and in quoted attributes).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_open_a_tag_or_close_an_attribute() {
        assert_eq!(escape("<b>\"x\" & 'y'</b>"), "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;");
        let mut page = Page::new();
        page.table(&["class"], &[vec!["<script>alert(1)</script>".into()]]);
        page.picture("a \"cat\"", &[1, 2, 3]);
        let html = page.finish("t<");
        assert!(!html.contains("<script>"));
        assert!(html.contains("src=\"data:image/png;base64,AQID\""));
        assert!(html.contains("alt=\"a &quot;cat&quot;\""));
        assert!(html.contains("<title>t&lt;</title>"));
    }
}

import Foundation

/// What every HTML report shares: one self-contained document (no external
/// assets) that reads fully with JavaScript off; with it on, `<html>` gets
/// class `js` and every `input.filter` box filters the rows of the table its
/// `data-table` names. Every string from a guest goes through `escape`.
enum HTMLPage {
    static func document(title: String, style: String, body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title))</title>
        <style>
        body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#1d1d1f}
        h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
        table{border-collapse:collapse;width:100%;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
        th{background:#f4f4f6}code,pre{font-family:ui-monospace,monospace;font-size:12px}
        pre{background:#f7f7f7;padding:.6em;overflow:auto;max-height:30em;white-space:pre-wrap}
        .filter{display:none;margin:.3em 0}.js .filter{display:block}
        \(style)
        </style></head><body>
        \(body)
        <script>
        document.documentElement.className = 'js';
        document.querySelectorAll('input.filter').forEach(function (box) {
          box.addEventListener('input', function () {
            var q = box.value.toLowerCase(), t = document.getElementById(box.dataset.table);
            t.querySelectorAll('tr').forEach(function (r, i) { if (i) r.style.display = r.textContent.toLowerCase().indexOf(q) < 0 ? 'none' : ''; });
          });
        });
        </script>
        </body></html>

        """
    }

    /// A filter box for the table with id `table`.
    static func filter(_ table: String) -> String {
        "<input class=\"filter\" type=\"search\" placeholder=\"filter \(escape(table))…\" data-table=\"\(escape(table))\">"
    }

    /// A class name from a label ("already broken" → `already-broken`).
    static func cssClass(_ s: String) -> String { s.lowercased().replacingOccurrences(of: " ", with: "-") }

    /// HTML-escapes text (guest output included): the same escaping as the JUnit report.
    static func escape(_ s: String) -> String { ReportWriter.esc(s) }
}

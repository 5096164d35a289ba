import Foundation
import Testing
@testable import Rehearsal

/// The run's HTML page as text (headless Chromium renders it in
/// CommandLineTests): guest text escaped, flaky and quarantined named.
struct RunPageTests {
    @Test func guestTextIsEscapedAndEveryScenarioHasItsSection() throws {
        var results = TAPReportTests.results()
        results[1].steps[1].stdout = "<script>alert('guest')</script> & <b>bold</b>"
        results[1].steps[1].console = ["[ 1.0] <not a tag>"]
        let page = RunPage.html(results)
        #expect(!page.contains("<script>alert"), "guest text must never become markup")
        #expect(page.contains("&lt;script&gt;alert(&#39;guest&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"), "\(page)")
        #expect(page.contains("[ 1.0] &lt;not a tag&gt;"))
        #expect(page.components(separatedBy: "<section class=\"scenario\"").count == 4)
        #expect(page.contains("id=\"verdict\"><strong>INFRASTRUCTURE</strong>"), "an infrastructure failure outranks a failure")
        #expect(page.contains("1 passed, 1 failed, 1 infrastructure"))
        #expect(page.contains("qemu: could not load kernel"))
        #expect(page.components(separatedBy: "<script>").count == 2, "one script only: the filter")
    }

    @Test func aFlakyPassAndAQuarantinedFailureAreNamedAsSuch() {
        var results = TAPReportTests.results()
        results[0].failedAttempts = [results[1]]
        results[1].quarantine = Quarantine.Entry(scenario: "upgrade", reason: "bug 7", link: "https://example.org/7", until: "2999-01-01")
        results.removeLast()
        let page = RunPage.html(results)
        #expect(page.contains("<span class=\"o flaky\">flaky</span>"))
        #expect(page.contains("1 earlier failed attempt"))
        #expect(page.contains("<span class=\"o quarantined\">quarantined</span>"))
        #expect(page.contains("Quarantine until 2999-01-01: bug 7"))
        #expect(page.contains("<strong>FAILED</strong>"), "a flaky pass fails the run without --allow-flaky")
    }
}

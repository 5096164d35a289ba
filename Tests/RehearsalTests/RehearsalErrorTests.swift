import Foundation
import Testing
@testable import Rehearsal

/// The core's one error: its code alone decides outcome and exit status.
struct RehearsalErrorTests {
    @Test func eachKindMapsToOneOutcomeAndOneExitStatus() {
        let cases: [(RehearsalError.Code, Outcome, Int32)] = [
            (.scenario, .failed, 1), (.timeout, .failed, 1),
            (.badScenario, .failed, 2), (.badImage, .failed, 2), (.unknownImage, .failed, 2),
            (.infrastructure, .infrastructure, 3), (.outOfMemory, .infrastructure, 3), (.imageBuild, .infrastructure, 3),
            (.interrupted, .interrupted, 130),
        ]
        for (code, outcome, status) in cases {
            let e = RehearsalError(code, "x")
            #expect(e.outcome == outcome && e.exitStatus == status, "\(code)")
        }
    }

    @Test func aCodeMatchesInCatchAndTheMessageIsNeverLookedAt() {
        func thrower(_ e: RehearsalError) throws { throw e }
        var caught = ""
        do { try thrower(.timeout("scenario failure")) } catch RehearsalError.Code.scenario {
            caught = "scenario"
        } catch RehearsalError.Code.timeout {
            caught = "timeout"
        } catch {
            caught = "other"
        }
        #expect(caught == "timeout")
    }

    @Test func aPlaceIsAddedOnlyWhenTheErrorHasNone() {
        let bare = RehearsalError(.unknownImage, "no image `x`").at("s.yaml", line: 3)
        #expect(bare.description == "s.yaml:3: no image `x`")
        let placed = RehearsalError(.badImage, "no boot sector", file: "disk.raw").at("s.yaml", line: 3)
        #expect(placed.description == "disk.raw: no boot sector")
    }

    @Test func theUnderlyingErrorAndEvidenceTravelWithIt() {
        let e = RehearsalError.infrastructure("starting the machine failed", underlying: HostCommand.Failure(command: ["qemu"], status: 1, output: ""))
        #expect((e.underlying as? HostCommand.Failure)?.status == 1)
        let unit = RehearsalError(.scenario, "after boot: a unit failed: broken.service", evidence: "× broken.service")
        #expect(unit.evidence == "× broken.service" && unit.description == "after boot: a unit failed: broken.service")
    }
}

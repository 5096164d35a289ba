import Testing
@testable import Libvirt

/// The wrapper against libvirt's test driver: evidence that the Swift layer
/// calls libvirt correctly, not that machines work (the integration tests boot real ones).
@Suite struct ConnectionTests {
    static let xml = """
    <domain type='test'>
      <name>wrapper-test</name>
      <metadata><x:tag xmlns:x='https://example.invalid/ns' v='1'/></metadata>
      <memory unit='MiB'>64</memory>
      <os><type>hvm</type></os>
    </domain>
    """

    @Test func createListTagAndDestroy() throws {
        let c = try Connection(uri: "test:///default")
        #expect(try c.driverType().lowercased() == "test")
        let d = try c.createDomain(xml: Self.xml)
        #expect(d.name == "wrapper-test")
        #expect(d.isActive)
        #expect(try c.allDomains().contains { $0.name == "wrapper-test" })
        #expect(try d.metadataElement(namespace: "https://example.invalid/ns")?.contains("v=\"1\"") == true)
        #expect(try d.metadataElement(namespace: "https://other.invalid/ns") == nil)
        try d.destroy()
        // Destroying again is not an error: the domain is already gone.
        try d.destroy()
        #expect(try c.domain(named: "wrapper-test") == nil)
        c.close()
    }

    @Test func errorsCarryTheOperationAndLibvirtsMessage() {
        #expect {
            _ = try Connection(uri: "nosuchdriver:///x")
        } throws: { e in
            guard let e = e as? LibvirtError else { return false }
            return e.operation.hasPrefix("virConnectOpen") && !e.message.isEmpty
        }
    }

    @Test func badXMLIsRefusedWithAMessage() throws {
        let c = try Connection(uri: "test:///default")
        #expect {
            _ = try c.createDomain(xml: "<domain>")
        } throws: { e in
            (e as? LibvirtError)?.operation == "virDomainCreateXML"
        }
    }
}

// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Rehearsal",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "rehearse", targets: ["rehearse"]),
        .library(name: "Rehearsal", targets: ["Rehearsal"]),
        .library(name: "Libvirt", targets: ["Libvirt"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // The C shim: a module map and one header over libvirt-dev, nothing else.
        .systemLibrary(
            name: "CLibvirt",
            pkgConfig: "libvirt",
            providers: [.apt(["libvirt-dev"])]
        ),
        // A safe Swift layer over libvirt's C API, with no harness logic.
        .target(name: "Libvirt", dependencies: ["CLibvirt"]),
        // The core: scenarios, images, machines, the console protocol, the runner, reports.
        .target(name: "Rehearsal", dependencies: ["Libvirt", "Yams"]),
        // The command line: parsing and presentation only.
        .executableTarget(
            name: "rehearse",
            dependencies: ["Rehearsal", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(name: "LibvirtTests", dependencies: ["Libvirt"]),
        .testTarget(name: "RehearsalTests", dependencies: ["Rehearsal"]),
        .testTarget(name: "IntegrationTests", dependencies: ["Rehearsal", "Libvirt"]),
    ]
)

// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Rehearsal",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "rehearse", targets: ["rehearse"]),
        .library(name: "Rehearsal", targets: ["Rehearsal"]),
        // For scenarios written in Swift: the terminal output and the command line of `rehearse run`.
        .library(name: "RehearsalProgram", targets: ["RehearsalProgram"]),
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
        // Presentation shared by `rehearse` and scenarios written in Swift:
        // the terminal, live progress, and a scenario program's command line.
        .target(
            name: "RehearsalProgram",
            dependencies: ["Rehearsal", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // The command line: parsing and presentation only.
        .executableTarget(
            name: "rehearse",
            dependencies: ["Rehearsal", "RehearsalProgram", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // An example scenario written in Swift: the demo service's upgrade from 1.0 to 2.0.
        .executableTarget(
            name: "upgrade-app-swift",
            dependencies: ["Rehearsal", "RehearsalProgram"],
            path: "Scenarios/swift/upgrade-app"
        ),
        .testTarget(name: "LibvirtTests", dependencies: ["Libvirt"]),
        .testTarget(name: "RehearsalTests", dependencies: ["Rehearsal"]),
        // Depends on the executables so that the tests always run the ones just built.
        .testTarget(name: "IntegrationTests", dependencies: ["Rehearsal", "RehearsalProgram", "Libvirt", "rehearse", "upgrade-app-swift"]),
    ]
)

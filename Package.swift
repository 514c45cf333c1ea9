// swift-tools-version:6.0
import PackageDescription

// Layers, dependencies flowing one way (docs/design.md draws the graph):
// COpenBLAS → Numerics, Host → ArchitectureDefinitions → Checkpoints → Tokenization → Architectures → Recipes → MergeMethods
//   → Planner → Export (GGUF out) → Inference → Evaluation → MoE → Reports → Evolve, Fuzz → CrucibleCLI → crucible
let package = Package(
    name: "Crucible",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "crucible", targets: ["crucible"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            path: "Sources/COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(name: "Numerics", dependencies: ["COpenBLAS"]),
        .target(name: "Host"),
        .target(name: "ArchitectureDefinitions"),
        .target(name: "Checkpoints", dependencies: ["Numerics", "Host", "ArchitectureDefinitions"]),
        .target(name: "Architectures", dependencies: ["Numerics", "Host", "Checkpoints", "ArchitectureDefinitions", "Tokenization"]),
        .target(name: "Recipes", dependencies: ["Numerics", "Host", .product(name: "Yams", package: "Yams")]),
        .target(name: "MergeMethods", dependencies: ["Numerics", "Host", "Recipes"]),
        .target(name: "Planner", dependencies: [
            "Numerics", "Host", "Checkpoints", "ArchitectureDefinitions", "Architectures", "Recipes", "MergeMethods", "Tokenization",
        ]),
        .target(name: "Tokenization", dependencies: ["Host", "ArchitectureDefinitions", "Checkpoints"]),
        // AVX2/FMA matrix-vector kernels over ggml blocks, selected at run time (portable float32 path otherwise).
        .target(name: "CQuantKernels"),
        .target(name: "Inference", dependencies: [
            "Numerics", "Host", "Checkpoints", "ArchitectureDefinitions", "Architectures", "CQuantKernels",
        ]),
        .target(name: "Evaluation", dependencies: ["Host", "Checkpoints", "Architectures", "Tokenization", "Inference"]),
        .target(name: "Export", dependencies: ["Host", "Checkpoints", "ArchitectureDefinitions", "Architectures", "Tokenization"]),
        .target(name: "MoE", dependencies: [
            "Numerics", "Host", "Checkpoints", "ArchitectureDefinitions", "Architectures", "Recipes", "Planner", "Tokenization", "Inference",
        ]),
        .target(name: "Reports", dependencies: [
            "Host", "Checkpoints", "ArchitectureDefinitions", "Architectures", "Recipes", "Planner", "Tokenization", "Inference",
            "Evaluation", "MoE",
        ]),
        .target(name: "Evolve", dependencies: [
            "Numerics", "Host", "Checkpoints", "Architectures", "Recipes", "MergeMethods", "Planner", "Tokenization", "Inference",
            "Evaluation", "Reports",
        ]),
        .target(name: "Fuzz", dependencies: [
            "Numerics", "Checkpoints", "Recipes", "Planner", "Tokenization", "Inference", "Evaluation", "MoE",
        ]),
        .target(name: "CrucibleCLI", dependencies: [
            "Numerics", "Host", "Checkpoints", "Architectures", "Recipes", "Planner",
            "Tokenization", "Inference", "Evaluation", "MoE", "Reports", "Evolve", "Fuzz", "Export",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "crucible", dependencies: ["CrucibleCLI"]),

        .target(name: "TestSupport", dependencies: ["Checkpoints"], path: "Tests/TestSupport"),
        .testTarget(name: "NumericsTests", dependencies: ["Numerics"]),
        .testTarget(name: "HostTests", dependencies: ["Host", "TestSupport"]),
        .testTarget(name: "CheckpointsTests", dependencies: ["Checkpoints", "ArchitectureDefinitions", "Numerics", "Host", "TestSupport"]),
        .testTarget(name: "RecipesTests", dependencies: ["Recipes", "TestSupport"]),
        .testTarget(name: "MergeMethodsTests", dependencies: ["MergeMethods", "Recipes", "Checkpoints", "Numerics", "TestSupport"]),
        .testTarget(name: "PlannerTests", dependencies: [
            "Planner", "Architectures", "Recipes", "MergeMethods", "Checkpoints", "Numerics", "Inference", "Tokenization", "TestSupport",
        ]),
        .testTarget(name: "TokenizationTests", dependencies: ["Tokenization", "Checkpoints", "TestSupport"]),
        .testTarget(name: "InferenceTests", dependencies: [
            "Inference", "Architectures", "Checkpoints", "Numerics", "CQuantKernels", "TestSupport",
        ]),
        .testTarget(name: "EvaluationTests", dependencies: [
            "Evaluation", "Inference", "Architectures", "Checkpoints", "Tokenization", "TestSupport",
        ]),
        .testTarget(name: "MoETests", dependencies: [
            "MoE", "Planner", "Inference", "Architectures", "Recipes", "Checkpoints", "Tokenization", "TestSupport",
        ]),
        .testTarget(name: "ReportsTests", dependencies: [
            "Reports", "Evaluation", "Recipes", "Checkpoints", "Tokenization", "TestSupport",
        ]),
        // The CLI tests run the built `crucible` executable.
        .testTarget(name: "CrucibleCLITests", dependencies: ["crucible", "Checkpoints", "TestSupport"]),
        .testTarget(name: "ExportTests", dependencies: [
            "Export", "Checkpoints", "Architectures", "Inference", "Tokenization", "TestSupport",
        ]),
        .testTarget(name: "FuzzTests", dependencies: ["Fuzz", "TestSupport"]),
        .testTarget(name: "EvolveTests", dependencies: [
            "Evolve", "Recipes", "MergeMethods", "Planner", "Inference", "Evaluation", "Checkpoints", "Numerics", "Tokenization",
            "TestSupport",
        ]),
    ],
    // Swift 6 toolchain, Swift 5 language mode: the numeric kernels share raw buffers across
    // `concurrentPerform` workers by design, which strict concurrency checking cannot express.
    swiftLanguageModes: [.v5]
)

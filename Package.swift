// swift-tools-version:6.0
import PackageDescription

// Layers, dependencies flowing one way:
// COpenBLAS → Tensors → Checkpoints → Architectures → Recipes → MergeMethods → Planner
//   → Tokenization → Inference → Evaluation → MoE → Reports → Fuzz → CrucibleCLI → crucible
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
        .target(name: "Tensors", dependencies: ["COpenBLAS"]),
        .target(name: "Checkpoints", dependencies: ["Tensors"]),
        .target(name: "Architectures", dependencies: ["Tensors", "Checkpoints"]),
        .target(name: "Recipes", dependencies: ["Tensors", .product(name: "Yams", package: "Yams")]),
        .target(name: "MergeMethods", dependencies: ["Tensors"]),
        .target(name: "Planner", dependencies: ["Tensors", "Checkpoints", "Architectures", "Recipes", "MergeMethods"]),
        .target(name: "Tokenization", dependencies: ["Tensors", "Checkpoints"]),
        .target(name: "Inference", dependencies: ["Tensors", "Checkpoints", "Architectures", "Tokenization"]),
        .target(name: "Evaluation", dependencies: ["Tensors", "Checkpoints", "Architectures", "Tokenization", "Inference"]),
        .target(name: "MoE", dependencies: [
            "Tensors", "Checkpoints", "Architectures", "Recipes", "Planner", "Tokenization", "Inference",
        ]),
        .target(name: "Reports", dependencies: [
            "Tensors", "Checkpoints", "Architectures", "Recipes", "Planner", "Tokenization", "Inference", "Evaluation", "MoE",
        ]),
        .target(name: "Fuzz", dependencies: [
            "Tensors", "Checkpoints", "Architectures", "Recipes", "Planner", "Tokenization", "Inference", "Evaluation", "MoE",
        ]),
        .target(name: "CrucibleCLI", dependencies: [
            "Tensors", "Checkpoints", "Architectures", "Recipes", "MergeMethods", "Planner",
            "Tokenization", "Inference", "Evaluation", "MoE", "Reports", "Fuzz",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "crucible", dependencies: ["CrucibleCLI"]),

        .target(name: "TestSupport", dependencies: ["Tensors", "Checkpoints"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TestSupport"]),
        .testTarget(name: "CheckpointsTests", dependencies: ["Checkpoints", "TestSupport"]),
        .testTarget(name: "RecipesTests", dependencies: ["Recipes", "TestSupport"]),
        .testTarget(name: "MergeMethodsTests", dependencies: ["MergeMethods", "Checkpoints", "TestSupport"]),
        .testTarget(name: "PlannerTests", dependencies: ["Planner", "Architectures", "Recipes", "Checkpoints", "TestSupport"]),
        .testTarget(name: "TokenizationTests", dependencies: ["Tokenization", "Checkpoints", "TestSupport"]),
        .testTarget(name: "InferenceTests", dependencies: ["Inference", "Architectures", "Checkpoints", "TestSupport"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Inference", "Tokenization", "TestSupport"]),
        .testTarget(name: "MoETests", dependencies: ["MoE", "Planner", "Inference", "Recipes", "Checkpoints", "TestSupport"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Evaluation", "Inference", "Checkpoints", "TestSupport"]),
        .testTarget(name: "CrucibleCLITests", dependencies: ["CrucibleCLI", "TestSupport"]),
        .testTarget(name: "FuzzTests", dependencies: ["Fuzz", "TestSupport"]),
    ],
    // Swift 6 toolchain, Swift 5 language mode: the numeric kernels share raw buffers across
    // `concurrentPerform` workers by design, which strict concurrency checking cannot express.
    swiftLanguageModes: [.v5]
)

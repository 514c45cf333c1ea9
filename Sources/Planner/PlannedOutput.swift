import Checkpoints
import Foundation
import Tokenization

/// The output a `MergePlan` will write, as a checkpoint whose headers and config are known but whose tensors are not
/// computed yet: a later stage of a multi-stage recipe is planned against it before the earlier stage runs.
enum PlannedOutput {
    static func checkpoint(of plan: MergePlan, at path: String) -> Checkpoint {
        Checkpoint(path: path, source: Source(plan: plan, path: path), config: plan.outputConfig,
                   configPath: (path as NSString).appendingPathComponent("config.json"), isGGUF: false)
    }

    final class Source: TensorSource, @unchecked Sendable {
        let path: String
        let tensorNames: [String]
        private let infos: [String: TensorInfo]
        /// The tokenizer the stage will write (its built vocabulary, or its donor's), so that a later stage can plan a
        /// vocabulary merge before this one runs; nil when the donor's cannot be read (the later plan then says so).
        let tokenizer: TokenizerVocabularyFile?

        init(plan: MergePlan, path: String) {
            self.path = path
            tokenizer = plan.vocabulary?.tokenizer ?? (try? VocabularyPlan.loadVocabulary(plan.models[plan.tokenizerDonor]))
            tensorNames = plan.tasks.map(\.outputName)
            infos = Dictionary(plan.tasks.map { ($0.outputName, TensorInfo(name: $0.outputName, dtype: $0.outputDType, shape: $0.shape)) },
                               uniquingKeysWith: { a, _ in a })
        }

        var location: String { path }
        func info(_ name: String) -> TensorInfo? { infos[name] }
        func file(of name: String) -> String? { infos[name] == nil ? nil : path }
        func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer? { throw notBuilt(name) }
        func readFloats(_ name: String, range: Range<Int>, into dest: UnsafeMutablePointer<Float>) throws { throw notBuilt(name) }

        private func notBuilt(_ name: String) -> CheckpointError {
            .unreadable(path: path, reason: "this stage's output is not built yet (tensor '\(name)')")
        }
    }
}

import ArgumentParser

/// The `crucible` command tree. Each subcommand parses its options, calls one library entry point and prints.
public struct CrucibleCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "crucible",
        abstract: "Merge open-weight LLMs from mergekit recipes, assemble FrankenMoEs, and score the results.",
        version: CrucibleCommand.version,
        subcommands: [MergeCommand.self, MoECommand.self, RunCommand.self, ScoreCommand.self, SynthCommand.self,
                      PerplexityCommand.self, GenerateCommand.self, TokenizeCommand.self, InspectCommand.self,
                      CompareCommand.self, ExportCommand.self, ExtractLoRACommand.self, QuantizeCommand.self, BenchCommand.self,
                      FuzzCommand.self, EvolveCommand.self]
    )
    /// The release, printed by `crucible --version`.
    public static let version = "0.5.0"

    public init() {}
}

/// A failure the command line itself finds while running (a benchmark's child process failing, a prompt that encodes
/// to nothing). Like every other runtime error it propagates to the argument parser, which prints it once as
/// `Error: …` and exits with status 1; a `ValidationError` is kept for bad arguments, which also print the usage.
struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

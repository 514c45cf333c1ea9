import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A finished child process as the benchmarks measure it: exit status, wall time, peak RSS and CPU time
/// (from `wait4`'s rusage, so only that child is counted).
public struct ChildProcessResult: Sendable {
    /// The exit code, or 128 + the signal number when it was killed.
    public let status: Int32
    public let seconds: Double
    /// Peak resident set size in bytes.
    public let maxRSS: Int
    public let cpuSeconds: Double
}

public enum ChildProcess {
    /// Where a child's standard output or error goes.
    public enum Output: Sendable {
        case inherit
        case discard
        /// Written (truncated first) to this file.
        case file(String)
    }

    /// Runs `exe` with `args` and waits for it.
    public static func run(_ exe: String, _ args: [String], stdout: Output = .inherit, stderr: Output = .inherit,
                           environment: [String: String] = [:]) throws -> ChildProcessResult {
        var pid: pid_t = 0
        let argv = ([exe] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var merged = ProcessInfo.processInfo.environment
        for (k, v) in environment { merged[k] = v }
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (fd, output) in [(Int32(1), stdout), (Int32(2), stderr)] {
            switch output {
            case .inherit: break
            case .discard: posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_WRONLY, 0)
            case let .file(path): posix_spawn_file_actions_addopen(&actions, fd, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            }
        }
        let start = Date()
        let rc = posix_spawn(&pid, exe, &actions, nil, argv, envp)
        guard rc == 0 else { throw ChildProcessFailure(executable: exe, reason: String(cString: strerror(rc))) }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let seconds = Date().timeIntervalSince(start)
        let exited = (status & 0x7f) == 0
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        return ChildProcessResult(status: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), seconds: seconds,
                                  maxRSS: Int(usage.ru_maxrss) * 1024, cpuSeconds: cpu)
    }
}

/// A child process that could not be started.
public struct ChildProcessFailure: Error, CustomStringConvertible, Sendable {
    public let executable: String
    public let reason: String
    public var description: String { "cannot start \(executable): \(reason)" }
}

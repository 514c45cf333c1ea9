import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A model folder written as one transaction: everything goes into a hidden staging folder beside the destination
/// (`.NAME.crucible-partial-PID`), which `commit()` renames into place only when complete. An existing destination is
/// refused unless `overwrite`, and then replaced only after the new folder is complete. Anything not committed is
/// removed, so an interrupted or failed run never leaves an output that looks complete.
///
/// Merges, MoE builds and exports all write through this one mechanism.
///
/// Concurrent runs: without `overwrite`, the final rename refuses a destination that appeared in the meantime
/// (`renameat2(RENAME_NOREPLACE)` on Linux, or a plain `rename` onto a folder only when that folder is empty), so of
/// two runs into one new folder exactly one succeeds and the other says why. Staging folders carry their owner's
/// process id; a later run in the same parent folder removes those whose process is gone (left by `kill -9`).
public final class OutputFolder: @unchecked Sendable {
    /// The destination, standardised.
    public let destination: String
    /// Where files are written until `commit()`.
    public let staging: String
    private let parent: String
    private let leaf: String
    private var committed = false
    private let overwrite: Bool
    /// Prefix of every staging folder name (`.NAME.crucible-partial-PID`), and of the old folder moved aside.
    public static let stagingMarker = ".crucible-partial-"
    static let oldMarker = ".crucible-old-"

    /// Checks the destination and creates the staging folder.
    /// - Throws: `CheckpointError.writeFailed` naming the destination when it exists and is not an empty folder
    ///   (unless `overwrite`), when it is a file, or when its parent cannot hold a new folder.
    /// `inputs` are the paths the run reads (model folders and files): a destination that is one of them, or holds
    /// one, is refused even with `overwrite`, since replacing it would delete an input.
    public init(destination path: String, overwrite: Bool, inputs: [String] = []) throws {
        let fm = FileManager.default
        self.overwrite = overwrite
        let out = (path as NSString).standardizingPath
        destination = out
        // Foundation's NSString.deletingLastPathComponent traps on one-character paths ("m"); URL does not.
        let dir = out.contains("/") ? URL(fileURLWithPath: out).deletingLastPathComponent().path : ""
        parent = dir.isEmpty ? "." : dir
        leaf = (out as NSString).lastPathComponent
        staging = (parent as NSString).appendingPathComponent(".\(leaf)\(Self.stagingMarker)\(getpid())\(Self.instanceSuffix())")

        var isDir: ObjCBool = false
        if fm.fileExists(atPath: out) {
            let target = Self.canonical(out)
            for input in inputs {
                let source = Self.canonical(input)
                if source == target || source.hasPrefix(target.hasSuffix("/") ? target : target + "/") {
                    throw CheckpointError.writeFailed(path: out,
                        reason: "it is (or holds) the input \(input); writing there would destroy it, even with --overwrite; "
                            + "choose another folder")
                }
            }
        }
        if fm.fileExists(atPath: out, isDirectory: &isDir) {
            if !isDir.boolValue { throw CheckpointError.writeFailed(path: out, reason: "exists and is not a folder") }
            let contents = (try? fm.contentsOfDirectory(atPath: out)) ?? []
            if !contents.isEmpty && !overwrite {
                throw CheckpointError.writeFailed(path: out,
                    reason: "already exists and is not empty; choose another folder or pass --overwrite")
            }
        }
        if !fm.fileExists(atPath: parent, isDirectory: &isDir) {
            do { try fm.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
                throw CheckpointError.writeFailed(path: out,
                    reason: "cannot create its parent folder \(parent): \(error.localizedDescription)")
            }
        } else if !isDir.boolValue {
            throw CheckpointError.writeFailed(path: out, reason: "its parent \(parent) is not a folder")
        }
        Self.removeStale(in: parent)
        try? fm.removeItem(atPath: staging)
        do {
            try fm.createDirectory(atPath: staging, withIntermediateDirectories: false)
        } catch {
            throw CheckpointError.writeFailed(path: out, reason: "cannot create a folder in \(parent): \(error.localizedDescription)")
        }
    }

    deinit { if !committed { abandon() } }

    /// The staging path of a file of the output.
    public func path(_ name: String) -> String { (staging as NSString).appendingPathComponent(name) }

    /// Writes a text file into the output.
    public func write(_ text: String, to name: String) throws {
        do {
            try text.write(toFile: path(name), atomically: false, encoding: .utf8)
        } catch {
            throw CheckpointError.writeFailed(path: (destination as NSString).appendingPathComponent(name),
                                              reason: error.localizedDescription)
        }
    }

    /// Moves the finished folder into place (replacing an existing one only now, and only with `overwrite`).
    /// After this the output exists.
    public func commit() throws {
        let fm = FileManager.default
        if !overwrite {
            // Atomic: fails if anything appeared at the destination since `init` (another run's finished output).
            if Self.renameNoReplace(staging, destination) == 0 { committed = true; return }
            let code = errno
            guard code == EEXIST || code == ENOTEMPTY || code == EINVAL || code == ENOSYS else {
                throw CheckpointError.writeFailed(path: destination,
                    reason: "cannot move the finished folder into place: \(String(cString: strerror(code)))")
            }
            // An empty folder (allowed at `init`) is replaced by rename(2) itself, atomically; a non-empty one
            // makes it fail, so nothing is ever replaced here.
            if code == EEXIST || code == ENOTEMPTY {
                var isDir: ObjCBool = false
                guard fm.fileExists(atPath: destination, isDirectory: &isDir), isDir.boolValue else {
                    throw CheckpointError.writeFailed(path: destination,
                        reason: "something else appeared there while this run was writing; it was left as it is "
                            + "(this run's output is discarded)")
                }
            }
            if rename(staging, destination) == 0 { committed = true; return }
            let again = errno
            if again == EEXIST || again == ENOTEMPTY || again == ENOTDIR || again == EISDIR {
                throw CheckpointError.writeFailed(path: destination,
                    reason: "another run wrote this folder while this one was running; it was not replaced "
                        + "(pass --overwrite to replace it); this run's output is discarded")
            }
            throw CheckpointError.writeFailed(path: destination,
                reason: "cannot move the finished folder into place: \(String(cString: strerror(again)))")
        }
        if fm.fileExists(atPath: destination) {
            let old = (parent as NSString).appendingPathComponent(".\(leaf)\(Self.oldMarker)\(getpid())")
            do {
                try? fm.removeItem(atPath: old)
                try fm.moveItem(atPath: destination, toPath: old)
                try fm.moveItem(atPath: staging, toPath: destination)
                try? fm.removeItem(atPath: old)
            } catch {
                if !fm.fileExists(atPath: destination) { try? fm.moveItem(atPath: old, toPath: destination) }
                throw CheckpointError.writeFailed(path: destination,
                    reason: "cannot replace the existing folder: \(error.localizedDescription)")
            }
        } else {
            do { try fm.moveItem(atPath: staging, toPath: destination) } catch {
                throw CheckpointError.writeFailed(path: destination,
                    reason: "cannot move the finished folder into place: \(error.localizedDescription)")
            }
        }
        committed = true
    }

    /// Removes the staging folder (the destination, if any, is left as it was).
    public func abandon() {
        guard !committed else { return }
        try? FileManager.default.removeItem(atPath: staging)
    }

    // MARK: Helpers

    private static let instances = NSLock()
    nonisolated(unsafe) private static var instanceCount = 0

    /// "" for a process's first output folder, ".N" for later ones, so two transactions of one process never share
    /// a staging folder.
    private static func instanceSuffix() -> String {
        instances.lock(); defer { instances.unlock() }
        instanceCount += 1
        return instanceCount == 1 ? "" : ".\(instanceCount - 1)"
    }

    /// Removes staging folders in `parent` whose owning process no longer exists: what a `kill -9` or a power cut
    /// leaves behind. A set-aside old output of a dead process is moved back to its name if nothing took its place,
    /// else removed. A folder whose process is alive is another run's and is left alone.
    public static func removeStale(in parent: String) {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: parent) else { return }
        for name in names where name.hasPrefix(".") {
            guard let pid = ownerPID(of: name), pid != getpid(), !processExists(pid) else { continue }
            let path = (parent as NSString).appendingPathComponent(name)
            // A set-aside old output whose replacement never arrived (killed between the two renames of an
            // --overwrite) is the only copy of that output: put it back instead of deleting it.
            if let r = name.range(of: oldMarker, options: .backwards) {
                let destination = (parent as NSString).appendingPathComponent(
                    String(name[name.index(after: name.startIndex)..<r.lowerBound]))
                if !fm.fileExists(atPath: destination), rename(path, destination) == 0 { continue }
            }
            try? fm.removeItem(atPath: path)
        }
    }

    /// The process id in a staging or old-folder name (`.NAME.crucible-partial-PID`, or `…-PID.N` for a process's
    /// later folders), or nil for other names.
    public static func ownerPID(of name: String) -> pid_t? {
        for marker in [stagingMarker, oldMarker] {
            guard let r = name.range(of: marker, options: .backwards) else { continue }
            let digits = name[r.upperBound...].prefix { $0 != "." }
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
                  let pid = pid_t(digits), pid > 0 else { return nil }
            return pid
        }
        return nil
    }

    static func processExists(_ pid: pid_t) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }

    /// The absolute path with symbolic links resolved (as far as it exists).
    static func canonical(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path)
        return ((absolute as NSString).standardizingPath as NSString).resolvingSymlinksInPath
    }

    /// `rename` that fails with EEXIST when `to` exists (Linux `renameat2(RENAME_NOREPLACE)`); -1 with ENOSYS where
    /// the system has no such call.
    static func renameNoReplace(_ from: String, _ to: String) -> Int32 {
        #if os(Linux)
        return crucible_renameat2(AT_FDCWD, from, AT_FDCWD, to, 1 /* RENAME_NOREPLACE */)
        #else
        errno = ENOSYS
        return -1
        #endif
    }
}

#if os(Linux)
/// glibc's `renameat2` (2.28+), declared here because the Glibc module does not export it.
@_silgen_name("renameat2")
private func crucible_renameat2(_ olddirfd: Int32, _ oldpath: UnsafePointer<CChar>, _ newdirfd: Int32,
                                _ newpath: UnsafePointer<CChar>, _ flags: UInt32) -> Int32
#endif

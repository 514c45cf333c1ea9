import Foundation

/// A model folder written as one transaction: everything goes into a hidden staging folder beside the destination
/// (`.NAME.crucible-partial-PID`), which `commit()` renames into place only when complete. An existing destination is
/// refused unless `overwrite`, and then replaced only after the new folder is complete. Anything not committed is
/// removed, so an interrupted or failed run never leaves an output that looks complete.
///
/// Merges, MoE builds and exports all write through this one mechanism.
public final class OutputFolder: @unchecked Sendable {
    /// The destination, standardised.
    public let destination: String
    /// Where files are written until `commit()`.
    public let staging: String
    private let parent: String
    private let leaf: String
    private var committed = false

    /// Checks the destination and creates the staging folder.
    /// - Throws: `CheckpointError.writeFailed` naming the destination when it exists and is not an empty folder
    ///   (unless `overwrite`), when it is a file, or when its parent cannot hold a new folder.
    public init(destination path: String, overwrite: Bool) throws {
        let fm = FileManager.default
        let out = (path as NSString).standardizingPath
        destination = out
        // Foundation's NSString.deletingLastPathComponent traps on one-character paths ("m"); URL does not.
        let dir = out.contains("/") ? URL(fileURLWithPath: out).deletingLastPathComponent().path : ""
        parent = dir.isEmpty ? "." : dir
        leaf = (out as NSString).lastPathComponent
        staging = (parent as NSString).appendingPathComponent(".\(leaf).crucible-partial-\(getpid())")

        var isDir: ObjCBool = false
        if fm.fileExists(atPath: out, isDirectory: &isDir) {
            if !isDir.boolValue { throw CheckpointError.writeFailed(path: out, reason: "exists and is not a folder") }
            let contents = (try? fm.contentsOfDirectory(atPath: out)) ?? []
            if !contents.isEmpty && !overwrite {
                throw CheckpointError.writeFailed(path: out, reason: "already exists and is not empty; choose another folder or pass --overwrite")
            }
        }
        if !fm.fileExists(atPath: parent, isDirectory: &isDir) {
            do { try fm.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
                throw CheckpointError.writeFailed(path: out, reason: "cannot create its parent folder \(parent): \(error.localizedDescription)")
            }
        } else if !isDir.boolValue {
            throw CheckpointError.writeFailed(path: out, reason: "its parent \(parent) is not a folder")
        }
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
            throw CheckpointError.writeFailed(path: (destination as NSString).appendingPathComponent(name), reason: error.localizedDescription)
        }
    }

    /// Moves the finished folder into place (replacing an existing one only now). After this the output exists.
    public func commit() throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: destination) {
            let old = (parent as NSString).appendingPathComponent(".\(leaf).crucible-old-\(getpid())")
            do {
                try? fm.removeItem(atPath: old)
                try fm.moveItem(atPath: destination, toPath: old)
                try fm.moveItem(atPath: staging, toPath: destination)
                try? fm.removeItem(atPath: old)
            } catch {
                if !fm.fileExists(atPath: destination) { try? fm.moveItem(atPath: old, toPath: destination) }
                throw CheckpointError.writeFailed(path: destination, reason: "cannot replace the existing folder: \(error.localizedDescription)")
            }
        } else {
            do { try fm.moveItem(atPath: staging, toPath: destination) } catch {
                throw CheckpointError.writeFailed(path: destination, reason: "cannot move the finished folder into place: \(error.localizedDescription)")
            }
        }
        committed = true
    }

    /// Removes the staging folder (the destination, if any, is left as it was).
    public func abandon() {
        guard !committed else { return }
        try? FileManager.default.removeItem(atPath: staging)
    }
}

import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The one way Crucible opens a file that someone else wrote (a model shard, a GGUF file, a config, a tokenizer,
/// a recipe): without blocking, and only if it is a regular file.
///
/// A plain `open(path, O_RDONLY)` of a FIFO waits forever for a writer, and reading a character device such as
/// `/dev/zero` never ends. Here the file is opened with `O_NONBLOCK`, checked with `fstat`, and anything that is not
/// a regular file is refused with an error naming the path and what it is instead.
public enum RegularFile {
    /// Why a file could not be opened; `notFound` separates a missing path from every other failure.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let path: String
        public let reason: String
        public let notFound: Bool
        public var description: String { "\(path): cannot be read: \(reason)" }
    }

    /// Opens `path` read-only and returns the descriptor (the caller closes it) and the file's size.
    public static func open(_ path: String) throws -> (fd: Int32, size: Int) {
        #if canImport(Glibc)
        let fd = Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        #else
        let fd = Darwin.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        #endif
        if fd < 0 {
            let code = errno
            throw Failure(path: path, reason: code == ENOENT ? "no such file" : String(cString: strerror(code)), notFound: code == ENOENT)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure(path: path, reason: reason, notFound: false)
        }
        let kind = st.st_mode & S_IFMT
        guard kind == S_IFREG else {
            close(fd)
            throw Failure(path: path, reason: "\(describe(kind)), expected a regular file", notFound: false)
        }
        // Regular files never block; clear the flag so later reads behave as usual.
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        return (fd, Int(st.st_size))
    }

    /// The whole contents of the regular file `path`; files larger than `maxBytes` are refused.
    public static func read(_ path: String, maxBytes: Int = 1 << 31) throws -> Data {
        let (fd, size) = try open(path)
        defer { close(fd) }
        guard size <= maxBytes else {
            throw Failure(path: path, reason: "\(size) bytes, more than the \(maxBytes) accepted for this kind of file", notFound: false)
        }
        var data = Data(count: size)
        var done = 0
        while done < size {
            let n = data.withUnsafeMutableBytes { buf -> Int in
                #if canImport(Glibc)
                return Glibc.read(fd, buf.baseAddress! + done, size - done)
                #else
                return Darwin.read(fd, buf.baseAddress! + done, size - done)
                #endif
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(path: path, reason: String(cString: strerror(errno)), notFound: false)
            }
            if n == 0 { break }   // the file shrank while being read
            done += n
        }
        if done < size { data.count = done }
        return data
    }

    /// Whether `path` names a regular file (following symbolic links), without opening it.
    public static func isRegular(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    private static func describe(_ kind: mode_t) -> String {
        switch kind {
        case S_IFDIR: return "it is a folder"
        case S_IFIFO: return "it is a FIFO (named pipe)"
        case S_IFCHR: return "it is a character device"
        case S_IFBLK: return "it is a block device"
        case S_IFSOCK: return "it is a socket"
        default: return "it is not a regular file"
        }
    }
}

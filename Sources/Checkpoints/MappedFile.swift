import Foundation
import Host
#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory map of a whole file. Pages are loaded by the kernel on first touch, so opening a
/// multi-gigabyte shard costs nothing until its tensors are read, and reading shares the page cache.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    public let base: UnsafeRawPointer?

    public init(path: String) throws {
        self.path = path
        let fd: Int32
        let fileSize: Int
        do {
            (fd, fileSize) = try RegularFile.open(path)
        } catch let e as RegularFile.Failure {
            if e.notFound { throw CheckpointError.fileNotFound(path: path) }
            throw CheckpointError.unreadable(path: path, reason: e.reason)
        }
        defer { close(fd) }
        size = fileSize
        if size == 0 {
            base = nil
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw CheckpointError.unreadable(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }

    /// The bytes in `range`, which the caller has checked lies inside the file.
    public func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= size)
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    /// Tells the kernel the span will be read soon / is no longer needed (keeps RSS bounded while streaming).
    public func advise(_ range: Range<Int>, willNeed: Bool) {
        guard let base, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (range.lowerBound / page) * page
        let end = min(size, range.upperBound)
        guard end > start else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, willNeed ? Int32(MADV_WILLNEED) : Int32(MADV_DONTNEED))
    }
}

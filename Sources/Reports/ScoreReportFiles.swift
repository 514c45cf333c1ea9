import Foundation

extension ScoreReport {
    /// Writes `report.json` (the `--json` object), `report.md` and `report.html` into `folder` (created if
    /// needed; existing report files are replaced). Returns the paths written.
    @discardableResult
    public func write(toFolder folder: String) throws -> [String] {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw ScoreError.invalidOption("\(folder): cannot create the report folder: \(error.localizedDescription)")
        }
        var written: [String] = []
        for (name, content) in [("report.json", json() + "\n"), ("report.md", markdown), ("report.html", html)] {
            let path = (folder as NSString).appendingPathComponent(name)
            do {
                try content.write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                throw ScoreError.invalidOption("\(path): cannot write: \(error.localizedDescription)")
            }
            written.append(path)
        }
        return written
    }
}

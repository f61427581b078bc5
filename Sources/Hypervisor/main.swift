// The image starts at `_start` (TernArchAsm/boot.S), which calls `tern_main` in Boot.swift. SwiftPM
// still wants an executable module to have a main; nothing ever calls it.

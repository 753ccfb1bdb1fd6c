package hugorelease

// ChecksumOf is checksumOf, for the table test.
var ChecksumOf = checksumOf

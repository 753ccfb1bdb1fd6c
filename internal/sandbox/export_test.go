package sandbox

// FastLaunch is whether the launcher in C is linked into this binary.
const FastLaunch = fastLaunch

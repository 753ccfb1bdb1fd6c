package manifest

import (
	"path"

	"github.com/sitehost/sitehost/internal/site"
)

// Storage keys (DESIGN §6): the layout is a contract between the writer and
// every reader, and with the data already stored.

// BlobKey is where a file body lives, by its sha256.
func BlobKey(sha string) string { return "blobs/" + sha[:2] + "/" + sha }

// ManifestKey is where deploy id of site s is described.
func ManifestKey(s site.Name, id site.DeployID) string {
	return path.Join("sites", string(s), "deploys", string(id)+".json")
}

// BuildKeyKey records which deploy a build key built.
func BuildKeyKey(s site.Name, key string) string {
	return path.Join("sites", string(s), "builds", key)
}

// PointerKey is channel c's pointer.
func PointerKey(s site.Name, c site.Channel) string {
	return path.Join(ChannelsPrefix(s), string(c)+".json")
}

// ChannelsPrefix is what every pointer key of site s starts with.
func ChannelsPrefix(s site.Name) string {
	return path.Join("sites", string(s), "channels") + "/"
}

// LogKey is where deploy id's build log lives.
func LogKey(s site.Name, id site.DeployID) string {
	return path.Join("sites", string(s), "logs", string(id)+".log")
}

package manifest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
)

// Reader reads deploys from an object store.
type Reader struct {
	st store.Store
}

// NewReader returns a Reader on st.
func NewReader(st store.Store) *Reader { return &Reader{st: st} }

// Pointer reads a channel's pointer; ErrNotFound if the channel does not exist.
func (r *Reader) Pointer(ctx context.Context, s site.Name, c site.Channel) (Pointer, error) {
	ptr, _, err := r.PointerVersion(ctx, s, c)
	return ptr, err
}

// PointerVersion reads a channel's pointer with the version (ETag) a
// conditional write that replaces it must name.
func (r *Reader) PointerVersion(ctx context.Context, s site.Name, c site.Channel) (Pointer, string, error) {
	var ptr Pointer
	info, err := r.getJSON(ctx, PointerKey(s, c), &ptr)
	return ptr, info.ETag, err
}

// Channels lists a site's channels and their pointers.
func (r *Reader) Channels(ctx context.Context, s site.Name) (map[site.Channel]Pointer, error) {
	prefix := ChannelsPrefix(s)
	out := make(map[site.Channel]Pointer)
	for info, err := range r.st.List(ctx, prefix) {
		if err != nil {
			return nil, fmt.Errorf("listing channels of %s: %w", s, err)
		}
		name, ok := strings.CutSuffix(strings.TrimPrefix(info.Key, prefix), ".json")
		c := site.Channel(name)
		if !ok || !c.Valid() {
			continue
		}
		ptr, err := r.Pointer(ctx, s, c)
		if errors.Is(err, ErrNotFound) {
			continue // deleted while we listed
		}
		if err != nil {
			return nil, err
		}
		out[c] = ptr
	}
	return out, nil
}

// Manifest reads a deploy's manifest; ErrNotFound if there is none.
func (r *Reader) Manifest(ctx context.Context, s site.Name, id site.DeployID) (*Manifest, error) {
	if !id.Valid() {
		return nil, ErrNotFound
	}
	var m Manifest
	if _, err := r.getJSON(ctx, ManifestKey(s, id), &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Log returns a deploy's build log.
func (r *Reader) Log(ctx context.Context, s site.Name, id site.DeployID) ([]byte, error) {
	obj, _, err := r.st.Get(ctx, LogKey(s, id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	return io.ReadAll(io.LimitReader(obj, 16<<20))
}

// OpenBlob opens a file body by its sha256.
func (r *Reader) OpenBlob(ctx context.Context, sha string) (store.Object, error) {
	if !ValidSHA256(sha) {
		return nil, fmt.Errorf("blob %q: %w", sha, ErrNotFound)
	}
	obj, _, err := r.st.Get(ctx, BlobKey(sha))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("blob %s: %w", sha, ErrNotFound)
	}
	return obj, err
}

func (r *Reader) getJSON(ctx context.Context, key string, v any) (store.Info, error) {
	obj, info, err := r.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return info, ErrNotFound
	}
	if err != nil {
		return info, fmt.Errorf("reading %s: %w", key, err)
	}
	defer obj.Close()
	// Manifests of very large sites run to tens of MB; the cap stops a
	// corrupt object from exhausting memory.
	if err := json.NewDecoder(io.LimitReader(obj, 256<<20)).Decode(v); err != nil {
		return info, fmt.Errorf("decoding %s: %w: %w", key, ErrCorrupt, err)
	}
	return info, nil
}

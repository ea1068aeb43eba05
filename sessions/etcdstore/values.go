package etcdstore

import (
	"context"
	"errors"
	"fmt"
)

// Value returns the named value, nil when it was never set.
func (s *Store) Value(ctx context.Context, name string) ([]byte, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	resp, err := s.cli.Get(ctx, s.valueKey(name))
	if err != nil {
		return nil, fmt.Errorf("etcd store: read value %q: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return append([]byte{}, resp.Kvs[0].Value...), nil
}

// SetValue stores v under name; a nil v deletes the value. Values are not
// fenced: they are the adapters' state (a Telegram update offset), kept
// by the process that leads the adapter.
func (s *Store) SetValue(ctx context.Context, name string, v []byte) error {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if name == "" {
		return errors.New("etcd store: set value: empty name")
	}
	if v == nil {
		_, err = s.cli.Delete(ctx, s.valueKey(name))
	} else {
		_, err = s.cli.Put(ctx, s.valueKey(name), string(v))
	}
	if err != nil {
		return fmt.Errorf("etcd store: set value %q: %w", name, err)
	}
	return nil
}

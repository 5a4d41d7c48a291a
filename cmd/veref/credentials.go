package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/verefwork/veref/auth"
)

// Where a client command's key comes from, in this order: VEREF_API_KEY,
// the OS credential store (service "veref", account = the API URL), then
// the plaintext file the user opted into.
const (
	sourceEnv      = "env"
	sourceKeychain = "keychain"
	sourceFile     = "file"

	keyringService   = "veref"
	plaintextOptIn   = "VEREF_ALLOW_PLAINTEXT_CLI_CREDENTIALS"
	credentialsFile  = "credentials.json"
	credentialsDir   = "veref"
	credentialsModes = "file 0600, folder 0700"
)

// storedKey is one entry of the plaintext file.
type storedKey struct {
	Key      string    `json:"key"`
	KeyID    string    `json:"keyId,omitempty"`
	StoredAt time.Time `json:"storedAt"`
}

// credentialFile is $XDG_CONFIG_HOME/veref/credentials.json: one entry per API URL.
type credentialFile struct {
	Credentials map[string]storedKey `json:"credentials"`
}

// credentialsPath is where the opted-in file lives, or "" when neither
// XDG_CONFIG_HOME nor HOME (APPDATA on Windows) says.
func credentialsPath(getenv func(string) string) string {
	base := getenv("XDG_CONFIG_HOME")
	if base == "" && runtime.GOOS == "windows" {
		base = getenv("APPDATA")
	}
	if base == "" && getenv("HOME") != "" {
		base = filepath.Join(getenv("HOME"), ".config")
	}
	if base == "" {
		return ""
	}
	return filepath.Join(base, credentialsDir, credentialsFile)
}

// keyringAvailable says whether the OS credential store answers at all.
func keyringAvailable(account string) error {
	_, err := keyring.Get(keyringService, account)
	if err == nil || errors.Is(err, keyring.ErrNotFound) {
		return nil
	}
	return err
}

// storedCredential finds the key stored for apiURL: the keychain first,
// then the file. A missing store or entry is not an error; a file others
// can read is.
func storedCredential(apiURL string, getenv func(string) string) (key, source string, err error) {
	if k, err := keyring.Get(keyringService, apiURL); err == nil && k != "" {
		return k, sourceKeychain, nil
	}
	path := credentialsPath(getenv)
	if path == "" {
		return "", "", nil
	}
	f, err := readCredentialFile(path)
	if err != nil || f == nil {
		return "", "", err
	}
	if e, ok := f.Credentials[apiURL]; ok && e.Key != "" {
		return e.Key, sourceFile, nil
	}
	return "", "", nil
}

// readCredentialFile reads the file, nil when there is none. A file or
// folder others can read is refused: the key in it would not be secret.
func readCredentialFile(path string) (*credentialFile, error) {
	info, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if runtime.GOOS != "windows" {
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			return nil, authError{fmt.Sprintf("refusing to read %s: its mode is %#o, so others can read the key in it; run chmod 600 %s (and consider revoking the key), or delete it and run veref login",
				path, perm, path)}
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	f := &credentialFile{}
	if err := json.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("%s is not a veref credentials file: %v", path, err)
	}
	if f.Credentials == nil {
		f.Credentials = map[string]storedKey{}
	}
	return f, nil
}

// writeCredentialFile saves f with the folder 0700 and the file 0600,
// through a temporary file so a crash never leaves half a file.
func writeCredentialFile(path string, f *credentialFile) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("securing %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".credentials-*.json")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("securing %s: %w", tmp.Name(), err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// storage is where login will keep a key, chosen before the login starts
// so a key is never minted with nowhere to go.
type storage struct {
	source string // sourceKeychain or sourceFile
	path   string // the file, for sourceFile
}

func chooseStorage(apiURL string, getenv func(string) string) (storage, error) {
	kerr := keyringAvailable(apiURL)
	if kerr == nil {
		return storage{source: sourceKeychain}, nil
	}
	if getenv(plaintextOptIn) != "1" {
		return storage{}, fmt.Errorf("no credential store is reachable (%v), so veref login has nowhere safe to keep a key. "+
			"Either create a key in the console and export VEREF_API_KEY=vrf_…, "+
			"or run with %s=1 to keep it in %s (%s)", oneLine(kerr), plaintextOptIn, displayPath(credentialsPath(getenv)), credentialsModes)
	}
	path := credentialsPath(getenv)
	if path == "" {
		return storage{}, fmt.Errorf("no credential store is reachable and neither XDG_CONFIG_HOME nor HOME is set, so there is no place for %s", credentialsFile)
	}
	if _, err := readCredentialFile(path); err != nil {
		return storage{}, err
	}
	return storage{source: sourceFile, path: path}, nil
}

func (s storage) save(apiURL, key, keyID string, now time.Time) error {
	if s.source == sourceKeychain {
		if err := keyring.Set(keyringService, apiURL, key); err != nil {
			return fmt.Errorf("storing the key in the credential store: %w", err)
		}
		return nil
	}
	f, err := readCredentialFile(s.path)
	if err != nil {
		return err
	}
	if f == nil {
		f = &credentialFile{Credentials: map[string]storedKey{}}
	}
	f.Credentials[apiURL] = storedKey{Key: key, KeyID: keyID, StoredAt: now.UTC()}
	return writeCredentialFile(s.path, f)
}

// forget deletes the key stored for apiURL from the keychain and the file;
// it reports whether there was one.
func forget(apiURL string, getenv func(string) string) (bool, error) {
	found := false
	if err := keyring.Delete(keyringService, apiURL); err == nil {
		found = true
	}
	path := credentialsPath(getenv)
	if path == "" {
		return found, nil
	}
	f, err := readCredentialFile(path)
	if err != nil || f == nil {
		return found, err
	}
	if _, ok := f.Credentials[apiURL]; !ok {
		return found, nil
	}
	delete(f.Credentials, apiURL)
	return true, writeCredentialFile(path, f)
}

// validKey checks a key's shape before it is sent anywhere.
func validKey(key, source string) error {
	if _, err := auth.ParseToken(key); err != nil {
		what := "VEREF_API_KEY"
		if source != sourceEnv {
			what = "the stored key (" + source + ")"
		}
		return authError{fmt.Sprintf("%s does not look like a Veref key: %v", what, err)}
	}
	return nil
}

func displayPath(p string) string {
	if p == "" {
		return "$XDG_CONFIG_HOME/veref/" + credentialsFile
	}
	return p
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

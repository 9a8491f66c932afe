// Package course holds the course system's synthetic data, computed rather than stored so that
// every process, in every language, agrees on it: the same rules as examples/course-data.ts.
package course

import (
	"fmt"
	"strings"
	"time"
)

// MaxUserID is the highest existing user id; ids 1..MaxUserID exist.
const MaxUserID = 1000

// ManualReviewThreshold is the amount above which a payment goes to a manual review.
const ManualReviewThreshold = 10_000

// ManualReviewDuration is how long a manual review takes: longer than any caller waits.
const ManualReviewDuration = 5 * time.Second

var (
	firstNames = []string{"Alice", "Bob", "Charlie", "Dana", "Erin", "Farid", "Grace", "Hiro", "Ines", "Jonas"}
	lastNames  = []string{"Smith", "Novak", "Okafor", "Garcia", "Kim", "Larsen", "Moreau", "Rossi", "Sato", "Weber"}
)

// User is a user of the course system.
type User struct {
	ID    int32
	Name  string
	Email string
}

// FindUser looks a user up by id; ok is false when id is not in 1..MaxUserID.
func FindUser(id int32) (user User, ok bool) {
	if id < 1 || id > MaxUserID {
		return User{}, false
	}
	first := firstNames[int(id)%len(firstNames)]
	last := lastNames[(int(id)/len(firstNames))%len(lastNames)]
	email := fmt.Sprintf("%s.%s.%d@example.com", strings.ToLower(first), strings.ToLower(last), id)
	return User{ID: id, Name: first + " " + last, Email: email}, true
}

// BalanceOf is the balance of a user in euros: a deterministic amount between 100 and 712.5.
func BalanceOf(userID int32) (amount float64, currency string) {
	id := int64(userID)
	if id < 0 {
		id = -id
	}
	return 100 + float64(id%50)*12.5, "EUR"
}

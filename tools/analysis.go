package tools

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/verefwork/veref/store"
)

// ReportContent is the analysis of a request's answers.
type ReportContent struct {
	CandidateID    string              `json:"candidateId"`
	CandidateName  string              `json:"candidateName"`
	Role           string              `json:"role,omitempty"`
	RequestStatus  store.RequestStatus `json:"requestStatus"`
	GeneratedAt    time.Time           `json:"generatedAt"`
	ResponseRate   float64             `json:"responseRate" doc:"Share of referees who answered, 0 to 1"`
	OverallAverage *float64            `json:"overallAverage,omitempty" doc:"Mean of every rating, 1 to 5"`
	Agreement      string              `json:"agreement" enum:"high,medium,low,not_enough_data" doc:"How closely referees' ratings agree"`
	Questions      []QuestionSummary   `json:"questions"`
	Referees       []RefereeSummary    `json:"referees"`
	Flags          []Flag              `json:"flags"`
}

// QuestionSummary aggregates one question across referees.
type QuestionSummary struct {
	ID          string       `json:"id"`
	Text        string       `json:"text"`
	Kind        string       `json:"kind"`
	Answers     int          `json:"answers"`
	Average     *float64     `json:"average,omitempty"`
	Min         *int         `json:"min,omitempty"`
	Max         *int         `json:"max,omitempty"`
	StdDev      *float64     `json:"stdDev,omitempty"`
	Agreement   string       `json:"agreement,omitempty" enum:"high,medium,low,not_enough_data"`
	TextAnswers []TextAnswer `json:"textAnswers,omitempty"`
}

// TextAnswer is a free-text answer, attributed.
type TextAnswer struct {
	RefereeID string `json:"refereeId"`
	Text      string `json:"text"`
}

// RefereeSummary is one referee's part.
type RefereeSummary struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Relationship  string            `json:"relationship"`
	Company       string            `json:"company,omitempty"`
	State         store.InviteState `json:"state"`
	AverageRating *float64          `json:"averageRating,omitempty"`
	Answered      int               `json:"answered"`
}

// Flag points at something a recruiter should look at.
type Flag struct {
	Kind       string `json:"kind" enum:"low_rating,declined,no_response,low_agreement"`
	Message    string `json:"message"`
	RefereeID  string `json:"refereeId,omitempty"`
	QuestionID string `json:"questionId,omitempty"`
}

// analyse builds the report content; it is pure so it is tested directly.
func analyse(r store.ReferenceRequest, cand store.Candidate, now time.Time) ReportContent {
	rc := ReportContent{CandidateID: cand.ID, CandidateName: cand.Name, Role: cand.Role, RequestStatus: r.Status,
		GeneratedAt: now, Questions: []QuestionSummary{}, Referees: []RefereeSummary{}, Flags: []Flag{}}
	var all []int
	var responded int
	for _, ref := range r.Referees {
		s := RefereeSummary{ID: ref.ID, Name: ref.Name, Relationship: ref.Relationship, Company: ref.Company, State: ref.State}
		var ratings []int
		for _, a := range ref.Answers {
			if a.Rating > 0 || a.Text != "" {
				s.Answered++
			}
			if a.Rating > 0 {
				ratings = append(ratings, a.Rating)
			}
		}
		s.AverageRating = mean(ratings)
		all = append(all, ratings...)
		rc.Referees = append(rc.Referees, s)
		switch ref.State {
		case store.InviteResponded:
			responded++
		case store.InviteDeclined:
			msg := ref.Name + " declined to give a reference"
			if ref.DeclineReason != "" {
				msg += ": " + ref.DeclineReason
			}
			rc.Flags = append(rc.Flags, Flag{Kind: "declined", Message: msg, RefereeID: ref.ID})
		default:
			rc.Flags = append(rc.Flags, Flag{Kind: "no_response", Message: ref.Name + " has not answered (" + string(ref.State) + ")", RefereeID: ref.ID})
		}
	}
	if len(r.Referees) > 0 {
		rc.ResponseRate = round2(float64(responded) / float64(len(r.Referees)))
	}
	rc.OverallAverage = mean(all)
	var sds []float64
	for _, q := range r.Questions {
		qs := QuestionSummary{ID: q.ID, Text: q.Text, Kind: q.Kind}
		var ratings []int
		for _, ref := range r.Referees {
			for _, a := range ref.Answers {
				if a.QuestionID != q.ID {
					continue
				}
				if a.Rating > 0 {
					ratings = append(ratings, a.Rating)
					if a.Rating <= 2 {
						rc.Flags = append(rc.Flags, Flag{Kind: "low_rating", RefereeID: ref.ID, QuestionID: q.ID,
							Message: fmt.Sprintf("%s rated %d/5: %s", ref.Name, a.Rating, q.Text)})
					}
				}
				if t := strings.TrimSpace(a.Text); t != "" {
					qs.TextAnswers = append(qs.TextAnswers, TextAnswer{RefereeID: ref.ID, Text: t})
				}
				if a.Rating > 0 || strings.TrimSpace(a.Text) != "" {
					qs.Answers++
				}
			}
		}
		if q.Kind == "rating" {
			qs.Average = mean(ratings)
			if len(ratings) > 0 {
				mn, mx := ratings[0], ratings[0]
				for _, v := range ratings {
					mn, mx = min(mn, v), max(mx, v)
				}
				qs.Min, qs.Max = &mn, &mx
			}
			qs.Agreement = "not_enough_data"
			if len(ratings) >= 2 {
				sd := stddev(ratings)
				qs.StdDev = &sd
				qs.Agreement = agreement(sd)
				sds = append(sds, sd)
				if qs.Agreement == "low" {
					rc.Flags = append(rc.Flags, Flag{Kind: "low_agreement", QuestionID: q.ID,
						Message: fmt.Sprintf("referees disagree on: %s (ratings %d to %d)", q.Text, mn(qs.Min), mn(qs.Max))})
				}
			}
		}
		rc.Questions = append(rc.Questions, qs)
	}
	rc.Agreement = "not_enough_data"
	if len(sds) > 0 {
		var sum float64
		for _, v := range sds {
			sum += v
		}
		rc.Agreement = agreement(sum / float64(len(sds)))
	}
	sort.SliceStable(rc.Flags, func(i, j int) bool { return flagRank[rc.Flags[i].Kind] < flagRank[rc.Flags[j].Kind] })
	return rc
}

var flagRank = map[string]int{"low_rating": 0, "low_agreement": 1, "declined": 2, "no_response": 3}

func mn(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func agreement(sd float64) string {
	switch {
	case sd < 0.75:
		return "high"
	case sd < 1.5:
		return "medium"
	default:
		return "low"
	}
}

func mean(v []int) *float64 {
	if len(v) == 0 {
		return nil
	}
	var s int
	for _, x := range v {
		s += x
	}
	m := round2(float64(s) / float64(len(v)))
	return &m
}

func stddev(v []int) float64 {
	m := 0.0
	for _, x := range v {
		m += float64(x)
	}
	m /= float64(len(v))
	var ss float64
	for _, x := range v {
		ss += (float64(x) - m) * (float64(x) - m)
	}
	return round2(math.Sqrt(ss / float64(len(v))))
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// relationshipWeight says how much a referee's view counts in a valuation:
// people who managed or paid for the candidate's work saw most of it.
var relationshipWeight = map[string]float64{"manager": 1.5, "client": 1.2, "direct_report": 1.0, "peer": 1.0, "other": 0.8}

// Valuate scores a request's answers from 0 to 100 with its components and a
// rationale a recruiter can read back against the answers.
func Valuate(r store.ReferenceRequest) (float64, *store.ValuationComponents, string, error) {
	var wsum, wtot float64
	var n, responded, declined int
	var all []int
	for _, ref := range r.Referees {
		switch ref.State {
		case store.InviteResponded:
			responded++
		case store.InviteDeclined:
			declined++
		}
		w, ok := relationshipWeight[ref.Relationship]
		if !ok {
			w = 1
		}
		for _, a := range ref.Answers {
			if a.Rating > 0 {
				wsum += w * float64(a.Rating)
				wtot += w
				n++
				all = append(all, a.Rating)
			}
		}
	}
	if n == 0 {
		return 0, nil, "", Conflict("the answers have no ratings to value")
	}
	weighted := wsum / wtot
	base := (weighted - 1) / 4 * 100
	declinePenalty := 10 * float64(declined)
	sd := 0.0
	if len(all) > 1 {
		sd = stddev(all)
	}
	disagreementPenalty := math.Max(0, sd-1) * 10
	score := math.Max(0, math.Min(100, base-declinePenalty-disagreementPenalty))
	score = round2(score)
	comps := &store.ValuationComponents{
		WeightedAverageRating: round2(weighted),
		Base:                  round2(base),
		Ratings:               n,
		RespondedReferees:     responded,
		DeclinedReferees:      declined,
		RatingStdDev:          sd,
		DeclinePenalty:        declinePenalty,
		DisagreementPenalty:   round2(disagreementPenalty),
	}
	var b strings.Builder
	// The rationale quotes the same rounded numbers as the components, so
	// a reader can redo the sum.
	num := func(f float64) string { return strconv.FormatFloat(round2(f), 'f', -1, 64) }
	fmt.Fprintf(&b, "%d rating(s) from %d referee(s) average %s out of 5 when weighted by relationship (managers 1.5, clients 1.2, peers and reports 1.0, others 0.8), giving a base of %s.",
		n, responded, num(weighted), num(base))
	if declined > 0 {
		fmt.Fprintf(&b, " %d referee(s) declined, costing %s points.", declined, num(declinePenalty))
	}
	if disagreementPenalty > 0 {
		fmt.Fprintf(&b, " Ratings vary widely (standard deviation %s), costing %s points.", num(sd), num(disagreementPenalty))
	}
	fmt.Fprintf(&b, " Score: %s/100.", num(score))
	return score, comps, b.String(), nil
}

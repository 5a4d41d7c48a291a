package tools

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/store"
)

func ratingAnswer(q string, r int) store.Answer  { return store.Answer{QuestionID: q, Rating: r} }
func textAnswer(q string, s string) store.Answer { return store.Answer{QuestionID: q, Text: s} }
func f64(f float64) *float64                     { return &f }
func intp(i int) *int                            { return &i }

var analysisQuestions = []store.Question{
	{ID: "q1", Kind: "rating", Text: "Overall performance?"},
	{ID: "q2", Kind: "rating", Text: "Teamwork?"},
	{ID: "q3", Kind: "text", Text: "Strengths?"},
}

// mixedRequest has three answers, one refusal and one silence:
//
//	Ann  manager   responded  q1=5 q2=4 q3="Strong lead"
//	Ben  peer      responded  q1=3 q2=4
//	Cat  client    responded  q1=1 q2=4
//	Dan  other     declined   ("No time")
//	Eve  peer      sent       (no answer)
func mixedRequest() store.ReferenceRequest {
	return store.ReferenceRequest{
		ID: "ref_1", CandidateID: "cand_1", Status: store.RequestInProgress, Questions: analysisQuestions,
		Referees: []store.Referee{
			{ID: "rfe_ann", Name: "Ann", Relationship: "manager", State: store.InviteResponded,
				Answers: []store.Answer{ratingAnswer("q1", 5), ratingAnswer("q2", 4), textAnswer("q3", "Strong lead")}},
			{ID: "rfe_ben", Name: "Ben", Relationship: "peer", State: store.InviteResponded,
				Answers: []store.Answer{ratingAnswer("q1", 3), ratingAnswer("q2", 4)}},
			{ID: "rfe_cat", Name: "Cat", Relationship: "client", Company: "Cat Co", State: store.InviteResponded,
				Answers: []store.Answer{ratingAnswer("q1", 1), ratingAnswer("q2", 4)}},
			{ID: "rfe_dan", Name: "Dan", Relationship: "other", State: store.InviteDeclined, DeclineReason: "No time"},
			{ID: "rfe_eve", Name: "Eve", Relationship: "peer", State: store.InviteSent},
		},
	}
}

func TestAnalyseMixedRequest(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	cand := store.Candidate{ID: "cand_1", Name: "Casey", Role: "Engineer"}
	rc := analyse(mixedRequest(), cand, now)

	assert.Equal(t, "cand_1", rc.CandidateID)
	assert.Equal(t, "Casey", rc.CandidateName)
	assert.Equal(t, "Engineer", rc.Role)
	assert.Equal(t, store.RequestInProgress, rc.RequestStatus)
	assert.Equal(t, now, rc.GeneratedAt)
	// 3 of 5 referees answered.
	assert.Equal(t, 0.6, rc.ResponseRate)
	// Every rating: 5+4+3+4+1+4 = 21 over 6 = 3.5.
	assert.Equal(t, f64(3.5), rc.OverallAverage)

	assert.Equal(t, []RefereeSummary{
		{ID: "rfe_ann", Name: "Ann", Relationship: "manager", State: "responded", AverageRating: f64(4.5), Answered: 3}, // (5+4)/2
		{ID: "rfe_ben", Name: "Ben", Relationship: "peer", State: "responded", AverageRating: f64(3.5), Answered: 2},    // (3+4)/2
		{ID: "rfe_cat", Name: "Cat", Relationship: "client", Company: "Cat Co", State: "responded", AverageRating: f64(2.5), Answered: 2},
		{ID: "rfe_dan", Name: "Dan", Relationship: "other", State: "declined"},
		{ID: "rfe_eve", Name: "Eve", Relationship: "peer", State: "sent"},
	}, rc.Referees)

	require.Len(t, rc.Questions, 3)
	// q1: 5,3,1. Mean 3. Population variance ((2)²+0²+(-2)²)/3 = 8/3; sqrt = 1.633 -> 1.63 >= 1.5: low.
	assert.Equal(t, QuestionSummary{ID: "q1", Text: "Overall performance?", Kind: "rating", Answers: 3,
		Average: f64(3), Min: intp(1), Max: intp(5), StdDev: f64(1.63), Agreement: "low"}, rc.Questions[0])
	// q2: 4,4,4. Mean 4, stddev 0 < 0.75: high.
	assert.Equal(t, QuestionSummary{ID: "q2", Text: "Teamwork?", Kind: "rating", Answers: 3,
		Average: f64(4), Min: intp(4), Max: intp(4), StdDev: f64(0), Agreement: "high"}, rc.Questions[1])
	// q3: text only, attributed; no rating aggregates.
	assert.Equal(t, QuestionSummary{ID: "q3", Text: "Strengths?", Kind: "text", Answers: 1,
		TextAnswers: []TextAnswer{{RefereeID: "rfe_ann", Text: "Strong lead"}}}, rc.Questions[2])

	// Overall agreement: mean of the per-question stddevs (1.63+0)/2 = 0.815, in [0.75, 1.5): medium.
	assert.Equal(t, "medium", rc.Agreement)

	// Flags, most serious first: Cat's 1 (<= 2), q1's spread, Dan's refusal, Eve's silence.
	assert.Equal(t, []Flag{
		{Kind: "low_rating", RefereeID: "rfe_cat", QuestionID: "q1", Message: "Cat rated 1/5: Overall performance?"},
		{Kind: "low_agreement", QuestionID: "q1", Message: "referees disagree on: Overall performance? (ratings 1 to 5)"},
		{Kind: "declined", RefereeID: "rfe_dan", Message: "Dan declined to give a reference: No time"},
		{Kind: "no_response", RefereeID: "rfe_eve", Message: "Eve has not answered (sent)"},
	}, rc.Flags)
}

func TestAnalyseWithoutAnswers(t *testing.T) {
	r := store.ReferenceRequest{Status: store.RequestSent, Questions: analysisQuestions, Referees: []store.Referee{
		{ID: "rfe_a", Name: "A", Relationship: "peer", State: store.InviteExpired},
		{ID: "rfe_b", Name: "B", Relationship: "peer", State: store.InviteDeclined},
	}}
	rc := analyse(r, store.Candidate{ID: "cand_1", Name: "X"}, time.Time{})
	assert.Zero(t, rc.ResponseRate)
	assert.Nil(t, rc.OverallAverage)
	assert.Equal(t, "not_enough_data", rc.Agreement)
	for _, q := range rc.Questions {
		assert.Zero(t, q.Answers, q.ID)
		assert.Nil(t, q.Average, q.ID)
		assert.Nil(t, q.Min, q.ID)
		assert.Nil(t, q.StdDev, q.ID)
	}
	assert.Equal(t, "not_enough_data", rc.Questions[0].Agreement)
	assert.Empty(t, rc.Questions[2].Agreement, "text questions have no agreement")
	assert.Equal(t, []Flag{
		{Kind: "declined", RefereeID: "rfe_b", Message: "B declined to give a reference"},
		{Kind: "no_response", RefereeID: "rfe_a", Message: "A has not answered (expired)"},
	}, rc.Flags)

	// No referees at all: empty lists, never nil (they are JSON arrays).
	empty := analyse(store.ReferenceRequest{}, store.Candidate{}, time.Time{})
	assert.Equal(t, []QuestionSummary{}, empty.Questions)
	assert.Equal(t, []RefereeSummary{}, empty.Referees)
	assert.Equal(t, []Flag{}, empty.Flags)
	assert.Zero(t, empty.ResponseRate)
}

func TestAnalyseRounding(t *testing.T) {
	// Ratings 5,4,4 on one question: mean 13/3 = 4.333 -> 4.33;
	// variance ((2/3)²+(1/3)²+(1/3)²)/3 = (6/9)/3 = 0.2222; sqrt = 0.4714 -> 0.47: high.
	r := store.ReferenceRequest{Questions: analysisQuestions[:1], Referees: []store.Referee{
		{ID: "a", Name: "A", State: store.InviteResponded, Answers: []store.Answer{ratingAnswer("q1", 5)}},
		{ID: "b", Name: "B", State: store.InviteResponded, Answers: []store.Answer{ratingAnswer("q1", 4)}},
		{ID: "c", Name: "C", State: store.InviteResponded, Answers: []store.Answer{ratingAnswer("q1", 4)}},
	}}
	rc := analyse(r, store.Candidate{}, time.Time{})
	assert.Equal(t, f64(4.33), rc.Questions[0].Average)
	assert.Equal(t, f64(0.47), rc.Questions[0].StdDev)
	assert.Equal(t, "high", rc.Questions[0].Agreement)
	assert.Equal(t, "high", rc.Agreement)
	assert.Equal(t, 1.0, rc.ResponseRate)
	assert.Empty(t, rc.Flags)

	// Two referees, 2 and 4: mean 3, stddev exactly 1: medium; the 2 is a low rating.
	r.Referees = r.Referees[1:]
	r.Referees[0].Answers = []store.Answer{ratingAnswer("q1", 2)}
	rc = analyse(r, store.Candidate{}, time.Time{})
	assert.Equal(t, f64(1), rc.Questions[0].StdDev)
	assert.Equal(t, "medium", rc.Questions[0].Agreement)
	require.Len(t, rc.Flags, 1)
	assert.Equal(t, "low_rating", rc.Flags[0].Kind)
}

func TestAgreementThresholds(t *testing.T) {
	for sd, want := range map[float64]string{0: "high", 0.74: "high", 0.75: "medium", 1.49: "medium", 1.5: "low", 2: "low"} {
		assert.Equal(t, want, agreement(sd), "stddev %v", sd)
	}
}

func TestValuateMixedRequest(t *testing.T) {
	score, comps, why, err := Valuate(mixedRequest())
	require.NoError(t, err)
	// Weighted by relationship (manager 1.5, peer 1.0, client 1.2):
	//   sum    1.5*(5+4) + 1.0*(3+4) + 1.2*(1+4) = 13.5 + 7 + 6 = 26.5
	//   weight 1.5*2 + 1.0*2 + 1.2*2 = 7.4
	//   average 26.5/7.4 = 3.5811 -> base (3.5811-1)/4*100 = 64.527
	// Dan declined: -10.
	// Every rating 5,4,3,4,1,4: mean 3.5, variance 9.5/6 = 1.5833, stddev 1.2583 -> 1.26;
	//   disagreement penalty (1.26-1)*10 = 2.6.
	// Score 64.527 - 10 - 2.6 = 51.927 -> 51.93.
	assert.InDelta(t, 51.93, score, 1e-9)
	assert.Equal(t, &store.ValuationComponents{
		WeightedAverageRating: 3.58,
		Base:                  64.53, // the 64.527 above
		Ratings:               6,
		RespondedReferees:     3,
		DeclinedReferees:      1,
		RatingStdDev:          1.26,
		DeclinePenalty:        10.0,
		DisagreementPenalty:   2.6,
	}, comps)
	assert.Equal(t, "6 rating(s) from 3 referee(s) average 3.58 out of 5 when weighted by relationship "+
		"(managers 1.5, clients 1.2, peers and reports 1.0, others 0.8), giving a base of 64.53. "+
		"1 referee(s) declined, costing 10 points. "+
		"Ratings vary widely (standard deviation 1.26), costing 2.6 points. Score: 51.93/100.", why)
}

func TestValuateBounds(t *testing.T) {
	answered := func(rel string, rs ...int) store.Referee {
		ref := store.Referee{Relationship: rel, State: store.InviteResponded}
		for i, r := range rs {
			ref.Answers = append(ref.Answers, ratingAnswer("q"+string(rune('1'+i)), r))
		}
		return ref
	}
	declined := store.Referee{Relationship: "peer", State: store.InviteDeclined}

	cases := []struct {
		name     string
		referees []store.Referee
		score    float64
	}{
		// All 5s: weighted 5, base (5-1)/4*100 = 100, no penalties.
		{"perfect", []store.Referee{answered("manager", 5, 5), answered("peer", 5, 5)}, 100},
		// All 1s: base 0; two refusals -20 would go below zero: clamped to 0.
		{"floor", []store.Referee{answered("peer", 1, 1), declined, declined}, 0},
		// Manager 5 (weight 1.5), other 1 (weight 0.8): (7.5+0.8)/2.3 = 3.6087 -> base 65.217;
		// stddev of 5,1 is 2 -> penalty (2-1)*10 = 10; score 55.217 -> 55.22.
		{"weights and spread", []store.Referee{answered("manager", 5), answered("other", 1)}, 55.22},
		// Peer 3 and direct report 3 weigh the same: base 50; one refusal -10: 40.
		{"decline", []store.Referee{answered("peer", 3), answered("direct_report", 3), declined}, 40},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			score, _, _, err := Valuate(store.ReferenceRequest{Referees: c.referees})
			require.NoError(t, err)
			assert.InDelta(t, c.score, score, 1e-9)
		})
	}
}

func TestValuateWithoutRatings(t *testing.T) {
	for name, r := range map[string]store.ReferenceRequest{
		"no referees": {},
		"only declines and silence": {Referees: []store.Referee{
			{Relationship: "manager", State: store.InviteDeclined},
			{Relationship: "peer", State: store.InviteSent},
		}},
		"text answers only": {Referees: []store.Referee{
			{Relationship: "peer", State: store.InviteResponded, Answers: []store.Answer{textAnswer("q3", "Fine")}},
		}},
	} {
		score, comps, why, err := Valuate(r)
		assert.Error(t, err, name)
		assert.Zero(t, score, name)
		assert.Nil(t, comps, name)
		assert.Empty(t, why, name)
	}
}

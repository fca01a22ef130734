"""The markdown of evaluate_detection's report: tables of the figures it measured (a dict
as the command writes it to --json), kept apart from the measuring so that each stays short."""

from apps.recognition.pipeline import detection_evaluation as de


def percent(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f} %)" if whole else f"{part}/0"


def share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "—"


def optional(value, spec: str = "", missing: str = "—") -> str:
    return missing if value is None else format(value, spec)


def breakdowns(report: dict) -> list[str]:
    """Recall by face size, the score curve and the small faces, detector by detector."""
    results = report["detectors"]
    lines = ["", f"### Annotated boxes matched by face width (IoU ≥ {report['iou']:g})", ""]
    bins = next((r["recall_by_size"] for r in results.values() if r["recall_by_size"]), [])
    if bins:
        heads = [f"{b['from_px']}-{b['to_px']} px" if b["to_px"] else f"≥ {b['from_px']} px" for b in bins]
        lines += [f"| detector | {' | '.join(heads)} |", "|---|" + "---|" * len(heads)]
        for name, result in results.items():
            cells = [percent(b["matched"], b["boxes"]) for b in result["recall_by_size"]]
            lines.append(f"| {name} | {' | '.join(cells)} |")
    else:
        lines.append("No annotated boxes in this folder.")
    lines += [
        "",
        "### Faces found against false detections, keeping only detections above a score",
        "",
        "| detector | min score: faces found, false per 10 photos |",
        "|---|---|",
    ]
    for name, result in results.items():
        points = de.curve_summary(result["score_curve"])
        cells = [
            f"{p['min_score']:.2f}: {100 * p['faces_found_rate']:.1f} %, {p['false_per_10_photos']:.1f}" for p in points
        ]
        lines.append(f"| {name} | {'; '.join(cells) or '—'} |")
    if any("small_faces" in r for r in results.values()):
        eyes = [row["eye_px"] for row in next(r["small_faces"] for r in results.values() if "small_faces" in r)]
        width, height = de.SMALL_FACES_FRAME
        lines += [
            "",
            f"### Small faces in {width} x {height} frames, by the distance between the eyes",
            "",
            f"| detector | {' | '.join(f'{e} px' for e in eyes)} | other detections |",
            "|---|" + "---|" * (len(eyes) + 1),
        ]
        for name, result in results.items():
            rows = result.get("small_faces", [])
            cells = [
                f"{share(row['found'], row['faces'])} found, {share(row['recognized'], row['faces'])} recognized"
                for row in rows
            ]
            other = sum(row["other_detections"] for row in rows)
            lines.append(f"| {name} | {' | '.join(cells)} | {other} in {sum(r['frames'] for r in rows)} frames |")
        lines += [
            "",
            "The service's whole path per frame (detection, landmarks and alignment of the faces of at least "
            "RECOGNITION_MIN_FACE_PX, their embedding; median, ms; faces per frame):",
            "",
            f"| detector | {' | '.join(f'{e} px' for e in eyes)} |",
            "|---|" + "---|" * len(eyes),
        ]
        for name, result in results.items():
            cells = [
                f"{row['ms_per_frame']:.0f} ({row['faces_per_frame']:.0f})" for row in result.get("small_faces", [])
            ]
            lines.append(f"| {name} | {' | '.join(cells)} |")
        faces = next(r["small_faces"] for r in results.values() if "small_faces" in r)[0]["faces"]
        lines.append(
            f"\n{faces} people of lfw-dev, one photo each shrunk whole (face and surroundings) to each "
            "distance, one per cell of a grey frame; found: a detection holding the face's centre, half to "
            "twice its width; recognized, through the service's whole path: the face kept (at least "
            f"RECOGNITION_MIN_FACE_PX = {report['min_face_px']} px), aligned and embedded by "
            f"{report['small_faces_model']}, nearest to the same person's other photo among all {faces}, "
            f"within the model's threshold. Target: ≥ {de.TARGETS.small_faces_found_rate:.0%} found at "
            f"{de.SMALL_FACES_TARGET_EYE_PX} px."
        )
    return lines


def markdown(report: dict) -> str:
    targets = de.TARGETS
    iou = f"{report['iou']:g}"
    side = report["timing_side"]
    large = report["large_side"]
    lines = [
        f"| detector | faces found | boxes at IoU≥{iou} | false per 10 photos | "
        f"ms per {side}-px frame (1 thread) | × faster than dlib | ms per {large}-px frame | meets targets |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, result in report["detectors"].items():
        s = result["summary"]
        failed = [check for check, ok in result["checks"].items() if not ok]
        lines.append(
            f"| {name} | {percent(s['faces_counted'], s['faces_expected'])} "
            f"| {percent(s['boxes_matched'], s['boxes_annotated'])} | {s['false_per_10_photos']:.1f} "
            f"| {result['ms_per_frame']:.1f} | {result['times_faster_than_dlib']:.1f} "
            f"| {result['ms_per_large_frame']:.1f} "
            f"| {'yes' if result['meets_targets'] else 'no: ' + ', '.join(failed)} |"
        )
    lines += [
        "",
        f"Targets: faces found ≥ {targets.faces_found_rate:.0%}, boxes matched ≥ {targets.boxes_matched_rate:.0%} "
        f"at IoU ≥ {iou}, ≤ {targets.false_per_10_photos:g} false detection per 10 photos, "
        f"≤ {targets.ms_per_frame:g} ms per {side}-px frame on one core, "
        f"≥ {targets.times_faster_than_dlib:g}× faster than dlib. Faces found: detections credited up to "
        "the faces expected per photo; false: detections beyond them. Accuracy on the photos as they are "
        f"(the analyzer detects on a copy of at most {report['detect_max_side']} px); timing: median over "
        f"photos of the median of {report['repeats']} calls, each photo resized to {side} px "
        f"(and to {large} px for the large frames).",
    ]
    lines += breakdowns(report)
    for name, result in report["detectors"].items():
        lines += [
            "",
            f"### {name}, per photo",
            "",
            f"| photo | expected | found | counted | false | boxes | matched | unmatched (informational) "
            f"| ms ({side} px) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in result["photos"]:
            lines.append(
                f"| {row['file']} | {row['expected']} | {row['found']} | {row['counted']} "
                f"| {row['false_detections']} | {optional(row['annotated'])} | {optional(row['matched'])} "
                f"| {optional(row['unmatched'])} | {row['ms']:.1f} |"
            )
        s = result["summary"]
        lines.append(
            f"| **all {s['photos']}** | {s['faces_expected']} | "
            f"{sum(row['found'] for row in result['photos'])} | {s['faces_counted']} | {s['false_detections']} "
            f"| {s['boxes_annotated']} | {s['boxes_matched']} | {s['unmatched_in_annotated_photos']} "
            f"| {result['ms_per_frame']:.1f} (median) |"
        )
    lines.append(
        "\nunmatched: detections on photos with annotated boxes that match none of them; VOC photos have "
        "unboxed people in the background, so some are right (check with --draw)."
    )
    return "\n".join(lines)
